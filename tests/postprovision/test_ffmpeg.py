"""FFmpeg as installed by the ffmpeg role: flags, hwaccels, codecs, linkage."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest


def login(host: Any, command: str) -> Any:
    """Run a command in a login shell, as a user of the node would."""
    return host.run("bash -lc " + shlex.quote(command))


def test_buildconf_has_seed_flags(host: Any, ffmpeg_prefix: str) -> None:
    out = host.check_output(f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -buildconf")
    for flag in ("--enable-vaapi", "--enable-libmp3lame", "--enable-shared", "--disable-static"):
        assert flag in out, f"{flag} missing from -buildconf:\n{out}"


def test_version_matches_fact(host: Any, ffmpeg_fact: dict[str, Any], ffmpeg_prefix: str) -> None:
    out = host.check_output(f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -version")
    assert out.startswith(f"ffmpeg version {ffmpeg_fact['current']} "), out.splitlines()[0]


def test_hwaccels_lists_vaapi(host: Any, ffmpeg_prefix: str) -> None:
    out = host.check_output(f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -hwaccels")
    assert "vaapi" in out.split()


def test_libmp3lame_is_an_encoder(host: Any, ffmpeg_prefix: str) -> None:
    out = host.check_output(f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -encoders")
    assert re.search(r"^\s*A\S*\s+libmp3lame\s", out, re.MULTILINE), out


def test_mp3_encode_of_a_tone_decodes(host: Any, ffmpeg_prefix: str) -> None:
    tmp = host.check_output("mktemp -d")
    try:
        mp3 = f"{tmp}/tone.mp3"
        host.run_test(
            f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -v error -f lavfi "
            f"-i sine=frequency=440:duration=2 -c:a libmp3lame -b:a 128k {mp3}"
        )
        probe = host.check_output(
            f"{ffmpeg_prefix}/bin/ffprobe -v error -show_entries stream=codec_name,sample_rate "
            f"-show_entries format=duration -of default=noprint_wrappers=1 {mp3}"
        )
        fields = dict(line.split("=", 1) for line in probe.splitlines())
        assert fields["codec_name"] == "mp3"
        assert abs(float(fields["duration"]) - 2.0) < 0.1
        decoded = host.run(f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -v error -i {mp3} -f null -")
        assert decoded.rc == 0 and decoded.stderr.strip() == "", decoded.stderr
    finally:
        host.run(f"rm -rf {tmp}")


def test_login_shell_finds_this_ffmpeg(host: Any, ffmpeg_prefix: str) -> None:
    out = login(host, "command -v ffmpeg")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == f"{ffmpeg_prefix}/bin/ffmpeg"


def test_pkg_config_version_matches_the_build(host: Any, ffmpeg_prefix: str) -> None:
    version = host.check_output(f"{ffmpeg_prefix}/bin/ffmpeg -hide_banner -version")
    m = re.search(r"^libavcodec\s+(\d+)\.\s*(\d+)\.\s*(\d+)", version, re.MULTILINE)
    assert m, version
    built = ".".join(str(int(part)) for part in m.groups())
    out = login(host, "pkg-config --modversion libavcodec")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == built
    libdir = login(host, "pkg-config --variable=libdir libavcodec").stdout.strip()
    assert host.file(libdir).exists and libdir.startswith(f"{ffmpeg_prefix.rsplit('/', 1)[0]}/")


def test_libraries_resolve_through_the_linker_cache(host: Any, ffmpeg_prefix: str) -> None:
    libs = host.check_output(f"find {ffmpeg_prefix}/lib/ -maxdepth 1 -name 'lib*.so.*' -type f").split()
    assert len(libs) >= 7, libs
    for lib in libs + [f"{ffmpeg_prefix}/bin/ffmpeg", f"{ffmpeg_prefix}/bin/ffprobe"]:
        out = host.run(f"env -u LD_LIBRARY_PATH ldd {lib}")
        assert out.rc == 0, out.stderr
        assert "not found" not in out.stdout, f"{lib}:\n{out.stdout}"
    cache = host.check_output("ldconfig -p")
    assert f"{ffmpeg_prefix}/lib/libavcodec.so" in cache


def test_release_has_no_setuid_setgid_or_world_writable_entries(host: Any, ffmpeg_prefix: str) -> None:
    release = host.check_output(f"readlink -f {shlex.quote(ffmpeg_prefix)}")
    unsafe = host.check_output(f"find {shlex.quote(release)} -perm /6002 ! -type l")
    assert unsafe == "", f"unsafe entries in {release}:\n{unsafe}"
    foreign = host.check_output(f"find {shlex.quote(release)} ! -user root")
    assert foreign == "", f"entries not owned by root in {release}:\n{foreign}"


def test_build_user_is_a_nologin_system_user_for_ffmpeg_only(host: Any) -> None:
    user = host.user("xpulab-build-ffmpeg")
    if not user.exists:
        pytest.skip("this node installed a cached artifact and never built FFmpeg")
    assert user.shell in ("/usr/sbin/nologin", "/sbin/nologin") and user.uid < 1000
    assert user.home == "/var/lib/xpulab/build/ffmpeg"
