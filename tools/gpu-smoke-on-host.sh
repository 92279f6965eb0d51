#!/usr/bin/env bash
# The decode smoke test on a host with an NVIDIA GPU and a working torch,
# offline: builds FFmpeg 7.1.5 with NVDEC from pinned tarballs, installs
# TorchCodec from a wheel directory, runs `xpulab_decode_smoke.py report` on
# the test clips with every device torch sees, cross-checks each clip with the
# ffmpeg CLI (NVDEC through `-hwaccel cuda` against its own CPU decode), and
# writes the JSON report and the fleet report (Markdown and HTML).
#
# Usage: tools/gpu-smoke-on-host.sh SOURCES_DIR WHEEL_DIR MEDIA_DIR OUT_DIR
#   SOURCES_DIR  the pinned files below (the libdav1d .debs are optional: with
#                them FFmpeg gets a software AV1 decoder for the CPU reference)
#   WHEEL_DIR    torchcodec-*.whl for this host's Python (torch must be there)
#   MEDIA_DIR    the clips of CLIPS below and the nasa_13013 golden frames
# Environment: PYTHON (default python3), XPULAB_GPU_WORK (build tree, default
# /tmp/xpulab-gpu-smoke), JOBS (default nproc). Needs a C compiler, make,
# pkg-config, dpkg-deb (for the optional .debs); nasm is used when present.
# Exit status: the smoke report's (0 passed, 1 a device failed), else the
# failing step's.
set -euo pipefail

# sha256, file. FFmpeg: the upstream 7.1.5 release tarball as Debian 13 ships
# it (http://deb.debian.org/debian/pool/main/f/ffmpeg/). nv-codec-headers
# 12.1.14.0 (FFmpeg 7.1's configure wants >= 12.0.16.1, or >= 11.1.5.3 on the
# 11.1 branch; Debian 12's 11.1.5.2 is refused): upstream's tarball as Debian 13
# ships it (pool/main/n/nv-codec-headers/, sha256 as in its -1.dsc). libdav1d
# 1.5.1: Debian 13's packages (pool/main/d/dav1d/).
PINS="de668509caf9e35e3cd162473441fdb29538c6d96ed080292b3cf9e6fc5d558f  ffmpeg_7.1.5.orig.tar.xz
0ca1a0c85b149646fa6ce4d600584507fdccf5a23d58e668d8701e89cee0c3fb  nv-codec-headers_12.1.14.0.orig.tar.xz"
DAV1D_PINS="8c64de4465a8ae1ca23e1dada1dfc73d7b431540fd5ae18f21430928576d5b05  libdav1d7_1.5.1-1_amd64.deb
c5d3cdd44e9ad4680d24c404f7b686759d29e9030d4f5d0deabb8792ec30a8ed  libdav1d-dev_1.5.1-1_amd64.deb"

# The clips (TorchCodec's test/resources) with per-backend thresholds where
# measurement calls for one: 10-bit h264 decodes at 33.3 dB against the CPU on
# cuda:0 (NVIDIA H200, TorchCodec 0.17.0, 2026-11-30), 8-bit clips at 46-53 dB.
# testsrc2_mpeg4 on cuda:0 (24.4 dB) is a known failure of TorchCodec, not a
# threshold: the stream has no colour matrix; TorchCodec 0.17.0's default CUDA
# backend converts it with BT.709, its CPU path with BT.601 (NVDEC's YUV matches
# the CPU's at 61.6 dB; see docs/gpu-hardware.md).
CLIPS='[
 {"name": "nasa_13013", "path": "nasa_13013.mp4", "golden": "nasa_13013_stream3_frames_0-9.rgb24"},
 {"name": "h265_video", "path": "h265_video.mp4"},
 {"name": "h264_10bits", "path": "h264_10bits.mp4", "psnr_threshold_db": {"cuda": 30, "xpu": 30}},
 {"name": "testsrc2_vp9", "path": "testsrc2_vp9.webm"},
 {"name": "testsrc2_mpeg4", "path": "testsrc2_mpeg4.avi"},
 {"name": "av1_video", "path": "av1_video.mkv"}
]'

[ $# -eq 4 ] || { sed -n '9,19s/^# \{0,1\}//p' "$0" >&2; exit 2; }
src=$(realpath "$1") wheels=$(realpath "$2") media=$(realpath "$3") out=$4
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3} work=${XPULAB_GPU_WORK:-/tmp/xpulab-gpu-smoke} jobs=${JOBS:-$(nproc)}
prefix=$work/prefix
mkdir -p "$out" "$work/nodes" && out=$(realpath "$out") && rm -rf "$prefix" "$work/site"
log=$out/build.log && : >"$log"

(cd "$src" && sha256sum --check --strict --quiet <<<"$PINS")
flags=(--prefix="$prefix" --enable-shared --disable-static --disable-doc
  --enable-ffnvcodec --enable-nvdec --enable-cuvid)
command -v nasm >/dev/null || flags+=(--disable-x86asm)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig LD_LIBRARY_PATH=$prefix/lib
if ls "$src"/libdav1d*.deb >/dev/null 2>&1; then
  (cd "$src" && sha256sum --check --strict --quiet <<<"$DAV1D_PINS")
  mkdir -p "$prefix/dav1d" && for deb in "$src"/libdav1d7_*.deb "$src"/libdav1d-dev_*.deb; do dpkg-deb -x "$deb" "$prefix/dav1d"; done
  dav1d_lib=$prefix/dav1d/usr/lib/x86_64-linux-gnu
  sed -i "s|^prefix=.*|prefix=$prefix/dav1d/usr|" "$dav1d_lib/pkgconfig/dav1d.pc"
  PKG_CONFIG_PATH+=:$dav1d_lib/pkgconfig LD_LIBRARY_PATH+=:$dav1d_lib
  flags+=(--enable-libdav1d)
fi

echo "== nv-codec-headers and FFmpeg 7.1.5 (${flags[*]:1}), log: $log"
tar -xJf "$src/nv-codec-headers_12.1.14.0.orig.tar.xz" -C "$work"
make -C "$work/nv-codec-headers-n12.1.14.0" PREFIX="$prefix" install >>"$log" 2>&1
rm -rf "$work/ffmpeg-7.1.5" && tar -xJf "$src/ffmpeg_7.1.5.orig.tar.xz" -C "$work"
start=$SECONDS
if ! (cd "$work/ffmpeg-7.1.5" && ./configure "${flags[@]}" && make -j"$jobs" && make install) >>"$log" 2>&1; then
  tail -n 40 "$log" >&2
  exit 1
fi
build="FFmpeg built in $((SECONDS - start)) s with $jobs jobs" && echo "$build"

echo "== TorchCodec from $wheels"
"$py" -m pip install -q --no-index --no-deps --no-compile --find-links "$wheels" --target "$work/site" torchcodec
export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
{
  echo "$build"
  nvidia-smi --query-gpu=name,pci.bus_id,driver_version,memory.total --format=csv
  "$py" -c 'import sys, torch, torchcodec; print(sys.version.split()[0], "torch", torch.__version__,
    "cuda", torch.version.cuda, "torchcodec", torchcodec.__version__)'
  "$prefix/bin/ffmpeg" -hide_banner -buildconf
  "$prefix/bin/ffmpeg" -hide_banner -hwaccels
} >"$out/host.txt" 2>&1

echo "== smoke report, every device"
sed "s|\"path\": \"|&$media/|; s|\"golden\": \"|&$media/|" <<<"$CLIPS" >"$work/clips.json"
rc=0
(cd "$work" && "$py" "$repo/roles/decode_smoke/files/xpulab_decode_smoke.py" report \
  --clips-json clips.json --output "$out/decode-smoke.json") | tee "$out/decode-smoke.txt" || rc=$?
[ -s "$out/decode-smoke.json" ] || exit 1

echo "== ffmpeg CLI: NVDEC through FFmpeg's parser (-hwaccel cuda) and NVIDIA's (CODEC_cuvid)"
echo "   against the CPU decode, first 10 frames, YUV PSNR"
for clip in "$media"/*.{mp4,webm,avi,mkv}; do
  codec=$("$prefix/bin/ffprobe" -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "$clip")
  for dec in "-hwaccel cuda" "-c:v ${codec}_cuvid"; do
    echo "-- ${clip##*/}: $dec"
    # shellcheck disable=SC2086 # $dec is two words
    "$prefix/bin/ffmpeg" -hide_banner -nostats $dec -i "$clip" -i "$clip" -lavfi '[0:v][1:v]psnr' \
      -frames:v 10 -f null - 2>&1 | grep -E 'PSNR|hwaccel|cuvid|rror|ailed' | awk '!seen[$0]++' || true
  done
done | tee "$out/ffmpeg-cuda-vs-cpu.txt"

echo "== fleet report"
node=$(hostname)
NODE=$node "$py" - "$out/decode-smoke.json" "$work/nodes/$node.json" <<'EOF'
import json, os, subprocess, sys
smoke = json.load(open(sys.argv[1]))
gpus = subprocess.run(["nvidia-smi", "--query-gpu=name,pci.bus_id,driver_version", "--format=csv,noheader"],
                      capture_output=True, text=True).stdout.splitlines()
versions = smoke["versions"]
json.dump({"node": os.environ["NODE"], "smoke": smoke,
           "gpus": [dict(zip(("family", "pci_address", "driver"), g.split(", "))) for g in gpus],
           "ffmpeg": {"version": versions["ffmpeg"]}, "torch": {"version": versions["torch"]},
           "torchcodec": {"method": "wheel", "version": versions["torchcodec"]}}, open(sys.argv[2], "w"))
EOF
for report in "$repo/roles/fleet_report/files/fleet_report.py" "$repo/tools/fleet_report.py"; do
  [ -f "$report" ] && break
done
"$py" "$report" --reports-dir "$work/nodes" --title "xpulab decode smoke on $node" \
  --markdown "$out/fleet-summary.md" --html "$out/fleet-summary.html" >/dev/null || true
gzip -f "$log"
echo "wrote $(cd "$out" && echo *) to $out"
exit "$rc"
