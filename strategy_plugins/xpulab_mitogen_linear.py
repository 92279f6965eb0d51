"""Mitogen's linear strategy for xpulab runs, without its CPU pinning.

Opt-in: ``ANSIBLE_STRATEGY=xpulab_mitogen_linear ansible-playbook ...``
(ansible.cfg names this directory in ``strategy_plugins``). Mitogen
(https://pypi.org/project/mitogen/) keeps one Python interpreter per node for
the whole run instead of copying and starting every module anew. It is not
the default: docs/performance.md says what fails under it.

Mitogen pins its processes and their children to CPUs; on a controller of
fewer than four CPUs every child shares one, and the sandbox's nodes (podman
exec children of the controller) then see a single CPU (``nproc`` 1), so
builds and decodes on them would use one core. The base policy pins nothing.
"""
from __future__ import annotations

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):  # type: ignore[misc,valid-type]
    """Ansible's linear strategy over Mitogen connections."""
