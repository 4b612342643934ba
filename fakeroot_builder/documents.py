"""The JSON documents a daemon and a registry write, with Go's encoding quirks.

Go's ``encoding/json`` writes compact JSON, keeps struct fields in declaration order, sorts map
keys, and escapes ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e`` and ``\\u0026``. Ids are
hashes of these exact bytes, so the spelling matters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "container_config",
    "go_json",
    "go_time",
    "host_config",
    "image_config",
    "manifest",
    "repositories_json",
    "v2_metadata",
]

#: Where the fake root pretends to live, for the paths a daemon records inside its documents.
DATA_ROOT = "/var/lib/docker"

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def go_json(value: Any, indent: str | None = None) -> bytes:
    """``json.Marshal`` (or ``MarshalIndent`` with ``indent``) as Go spells it."""
    if indent is None:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(value, indent=len(indent), ensure_ascii=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def go_time(moment: datetime, nanos: int = 0) -> str:
    """RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's ``time.RFC3339Nano``."""
    base = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def _container_config_fields(
    cfg: Mapping[str, Any], image: str, cmd: Any = None, labels_default: Any = None
) -> dict[str, Any]:
    """container.Config in struct order, ``omitempty`` fields only when set."""
    out: dict[str, Any] = {
        "Hostname": cfg.get("Hostname", ""),
        "Domainname": "",
        "User": cfg.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": cfg.get("AttachStdout", False),
        "AttachStderr": cfg.get("AttachStderr", False),
    }
    if cfg.get("ExposedPorts"):
        out["ExposedPorts"] = dict(sorted(cfg["ExposedPorts"].items()))
    out |= {"Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": list(cfg.get("Env", []))}
    out["Cmd"] = list(cmd) if cmd is not None else (list(cfg["Cmd"]) if cfg.get("Cmd") else None)
    if cfg.get("ArgsEscaped"):
        out["ArgsEscaped"] = True
    out |= {
        "Image": image,
        "Volumes": dict(sorted(cfg["Volumes"].items())) if cfg.get("Volumes") else None,
        "WorkingDir": cfg.get("WorkingDir", ""),
        "Entrypoint": list(cfg["Entrypoint"]) if cfg.get("Entrypoint") else None,
        "OnBuild": None,
        "Labels": dict(sorted(cfg.get("Labels", {}).items())) if cfg.get("Labels") else labels_default,
    }
    if cfg.get("StopSignal"):
        out["StopSignal"] = cfg["StopSignal"]
    return out


def image_config(
    *,
    config: Mapping[str, Any],
    parent_image: str,
    last_step: str,
    created: str,
    history: Sequence[Mapping[str, Any]],
    diff_ids: Sequence[str],
) -> bytes:
    """An image config as ``docker build`` (classic builder, Docker 20.10) writes it.

    Top-level keys come out sorted (moby merges them through a map); ``config`` and
    ``container_config`` keep container.Config's field order.
    """
    container_config = dict(config)
    container_config["Cmd"] = ["/bin/sh", "-c", last_step]
    doc = {
        "architecture": "amd64",
        "config": _container_config_fields(config, parent_image),
        "container_config": _container_config_fields(container_config, parent_image),
        "created": created,
        "docker_version": "20.10.24+dfsg1",
        "history": [dict(h) for h in history],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    return go_json(doc)


def manifest(config_bytes: bytes, config_digest: str, layers: Sequence[tuple[int, str]]) -> bytes:
    """A registry's v2 schema 2 manifest, indented with three spaces as docker/distribution does."""
    doc = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "size": len(config_bytes), "digest": config_digest},
        "layers": [{"mediaType": MEDIA_LAYER, "size": size, "digest": digest} for size, digest in layers],
    }
    return go_json(doc, indent="   ")


def repositories_json(refs: Mapping[str, Mapping[str, str]]) -> bytes:
    """``image/overlay2/repositories.json``: compact, every map sorted, no newline."""
    repos = {repo: dict(sorted(r.items())) for repo, r in sorted(refs.items())}
    return go_json({"Repositories": repos})


def v2_metadata(entries: Sequence[tuple[str, str]]) -> bytes:
    """``distribution/v2metadata-by-diffid/…``: which blob and repository a layer came from."""
    return go_json([{"Digest": d, "SourceRepository": r, "HMAC": ""} for d, r in entries])


def container_config(
    *,
    container_id: str,
    name: str,
    created: str,
    image_ref: str,
    image_id: str,
    config: Mapping[str, Any],
    cmd: Sequence[str] | None,
    state: Mapping[str, Any],
    started: bool,
    sandbox_id: str = "",
) -> bytes:
    """``containers/<id>/config.v2.json`` as Docker 20.10 writes it (with a final newline)."""
    entrypoint = list(config.get("Entrypoint") or [])
    args = list(cmd) if cmd is not None else list(config.get("Cmd") or [])
    argv = entrypoint + args
    cfg = dict(config) | {"Hostname": container_id[:12], "AttachStdout": True, "AttachStderr": True}
    here = f"{DATA_ROOT}/containers/{container_id}"
    paths = {
        "LogPath": f"{here}/{container_id}-json.log" if started else "",
        "HostnamePath": f"{here}/hostname" if started else "",
        "HostsPath": f"{here}/hosts" if started else "",
        "ResolvConfPath": f"{here}/resolv.conf" if started else "",
    }
    doc = {
        "StreamConfig": {},
        "State": dict(state),
        "ID": container_id,
        "Created": created,
        "Managed": False,
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "Config": _container_config_fields(cfg, image_ref, cmd, labels_default={}),
        "Image": image_id,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": sandbox_id,
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Networks": {
                "bridge": {
                    "IPAMConfig": None,
                    "Links": None,
                    "Aliases": None,
                    "NetworkID": "",
                    "EndpointID": "",
                    "Gateway": "",
                    "IPAddress": "",
                    "IPPrefixLen": 0,
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "MacAddress": "",
                    "DriverOpts": None,
                    "IPAMOperational": False,
                }
            },
            "Service": None,
            "Ports": None,
            "SandboxKey": f"/var/run/docker/netns/{sandbox_id[:12]}" if sandbox_id else "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "IsAnonymousEndpoint": False,
            "HasSwarmEndpoint": False,
        },
        "LogPath": paths["LogPath"],
        "Name": "/" + name,
        "Driver": "overlay2",
        "OS": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "RestartCount": 0,
        "HasBeenStartedBefore": started,
        "HasBeenManuallyStopped": False,
        "MountPoints": {},
        "SecretReferences": None,
        "ConfigReferences": None,
        "AppArmorProfile": "",
        "HostnamePath": paths["HostnamePath"],
        "HostsPath": paths["HostsPath"],
        "ShmPath": "",
        "ResolvConfPath": paths["ResolvConfPath"],
        "SeccompProfile": "",
        "NoNewPrivileges": False,
        "LocalLogCacheMeta": {"HaveNotifyEnabled": False},
    }
    return go_json(doc) + b"\n"


def host_config() -> bytes:
    """``containers/<id>/hostconfig.json`` for a container created with no options (ends in ``\n``)."""
    doc = {
        "Binds": None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "CapAdd": None,
        "CapDrop": None,
        "CgroupnsMode": "host",  # what the reference daemon (cgroup v1) writes; v2 hosts say "private"
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": None,
        "GroupAdd": None,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": False,
        "SecurityOpt": None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 67108864,
        "Runtime": "runc",
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": None,
        "OomKillDisable": False,
        "PidsLimit": None,
        "Ulimits": None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": [
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
        ],
        "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    return go_json(doc) + b"\n"
