"""Podman connection with pipelining: one ``podman exec -i`` per module call."""
from __future__ import annotations

DOCUMENTATION = r"""
name: podman_pipelined
short_description: Run tasks in podman containers, one C(podman exec) per module call
description:
  - The C(containers.podman.podman) connection, with Ansible's pipelining turned on.
  - C(containers.podman.podman) runs six C(podman) commands per module call (mount,
    the home directory, mkdir, chmod, python, rm), about 0.2 s each on a 2-core
    controller. With pipelining the module goes to the container's Python on
    stdin of one C(podman exec --interactive), as it does over SSH with
    C(pipelining = true).
  - The container's filesystem is mounted only when a file is copied in or out
    (C(copy), C(template), C(fetch)), not for every task.
  - Used by the xpulab sandbox (C(inventories/sandbox)), whose nodes are podman
    containers; a real lab uses SSH.
author:
  - xpulab (@xpulab)
extends_documentation_fragment: []
options:
  remote_addr:
    description: The ID or name of the container.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_podman_host
  remote_user:
    description: The user inside the container to run as.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments to pass to every C(podman) command.
    default: ''
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The C(podman) executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description: Send modules on the stdin of one C(podman exec) instead of copying them in.
    type: boolean
    default: true
    ini:
      - section: defaults
        key: pipelining
      - section: connection
        key: pipelining
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""

import shlex
import typing as t

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    """containers.podman.podman with pipelining and a lazy mount."""

    transport = "xpulab.gpu.podman_pipelined"
    has_pipelining = True

    def _connect(self) -> "Connection":
        # The parent mounts the container here, one podman command per task;
        # only file transfers need the mount, so they ask for it.
        self._connected = True
        return self

    def _mounted(self) -> None:
        if self._mount_point is None:
            PodmanConnection._connect(self)

    def exec_command(self, cmd: str, in_data: t.Optional[bytes] = None, sudoable: bool = False) -> t.Tuple[int, bytes, bytes]:
        """Run cmd in the container; in_data (a pipelined module) goes to its stdin."""
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("--interactive")
        if self.user:
            args.extend(("--user", self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path: str, out_path: str) -> None:
        self._mounted()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        self._mounted()
        super().fetch_file(in_path, out_path)
