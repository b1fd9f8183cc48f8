"""The lab: real Asterisk 22 instances for development and tests.

``rootfs`` provisions a Debian sid root file system with Debian's Asterisk packages,
``asterisk_base`` renders the lab's plumbing config files, ``instance`` runs instances
(chroot or host Asterisk) on loopback ports and waits for FullyBooted, ``cli`` is
``callcenter lab``. See docs/lab.md.
"""

from callcenter.lab.instance import (
    ChrootRuntime,
    HostRuntime,
    InstanceEndpoints,
    InstanceStatus,
    LabInstance,
    LabPorts,
    Runtime,
)
from callcenter.lab.rootfs import LabError, default_cache_dir, provision_rootfs

__all__ = [
    "ChrootRuntime",
    "HostRuntime",
    "InstanceEndpoints",
    "InstanceStatus",
    "LabError",
    "LabInstance",
    "LabPorts",
    "Runtime",
    "default_cache_dir",
    "provision_rootfs",
]
