"""The Pod Security Standards' "restricted" profile as plain checks over a pod spec, so a manifest that the
API server of a `restricted` namespace would refuse fails here first, with the rule it breaks.

The rules are the official ones (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
restricted = every baseline control plus six more; the control names below are the page's headings.
Windows-only exemptions are not modelled: finegate's pods are Linux pods.

`restricted_violations(pod_spec, annotations)` checks one pod spec; `pipeline_task_violations(...)` checks
the security settings a compiled pipeline gives its tasks (kfp-kubernetes' platform spec).
"""

from __future__ import annotations

# Baseline "Capabilities": the only capabilities a container may add.
BASELINE_ADDABLE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
# Restricted "Capabilities": drop ALL, add at most this one.
RESTRICTED_ADDABLE_CAPABILITIES = {"NET_BIND_SERVICE"}
# Restricted "Volume Types".
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret"}
# Baseline "Sysctls": the safe set.
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
# Baseline "SELinux": allowed types; user and role must stay unset.
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _containers(spec: dict) -> list[tuple[str, dict]]:
    return [(f"{field}[{c.get('name', i)}]", c) for field in ("initContainers", "containers", "ephemeralContainers")
            for i, c in enumerate(spec.get(field) or [])]


def _baseline(spec: dict, annotations: dict) -> list[str]:
    problems = []
    pod_sc = spec.get("securityContext") or {}
    contexts = [("pod", pod_sc)] + [(where, c.get("securityContext") or {}) for where, c in _containers(spec)]
    for where, sc in contexts:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"HostProcess: {where} sets windowsOptions.hostProcess")
        if sc.get("privileged"):
            problems.append(f"Privileged Containers: {where} is privileged")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            problems.append(f"Seccomp: {where} sets seccompProfile Unconfined")
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            problems.append(f"AppArmor: {where} sets appArmorProfile {apparmor}")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            problems.append(f"SELinux: {where} sets seLinuxOptions {selinux}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"/proc Mount Type: {where} sets procMount {sc['procMount']}")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"Host Namespaces: the pod sets {field}")
    for where, c in _containers(spec):
        added = set(((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or [])
        if added - BASELINE_ADDABLE_CAPABILITIES:
            problems.append(f"Capabilities: {where} adds {sorted(added - BASELINE_ADDABLE_CAPABILITIES)}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"Host Ports: {where} uses hostPort {port['hostPort']}")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"HostPath Volumes: volume {volume.get('name')} is a hostPath")
    for key, value in (annotations or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and not (value == "runtime/default" or value.startswith("localhost/")):
            problems.append(f"AppArmor: annotation {key}={value}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"Sysctls: the pod sets {sysctl.get('name')}")
    return problems


def _restricted_only(spec: dict) -> list[str]:
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"Volume Types: volume {volume.get('name')} is {sorted(kinds)}")
    if pod_sc.get("runAsUser") == 0:
        problems.append("Running as Non-root user: the pod sets runAsUser 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_ALLOWED:
        problems.append(f"Seccomp: the pod's seccompProfile is {pod_seccomp}")
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"Privilege Escalation: {where} does not set allowPrivilegeEscalation: false")
        # runAsNonRoot: the pod says true, or the container does; a container may never say false.
        if sc.get("runAsNonRoot") is False or (sc.get("runAsNonRoot") is None and pod_sc.get("runAsNonRoot") is not True):
            problems.append(f"Running as Non-root: neither {where} nor the pod sets runAsNonRoot: true")
        if sc.get("runAsUser") == 0:
            problems.append(f"Running as Non-root user: {where} sets runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in SECCOMP_ALLOWED:
            problems.append(f"Seccomp: {where} sets seccompProfile {seccomp}")
        if seccomp is None and pod_seccomp not in SECCOMP_ALLOWED:
            problems.append(f"Seccomp: neither {where} nor the pod sets seccompProfile RuntimeDefault or Localhost")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"Capabilities: {where} does not drop ALL")
        added = set(capabilities.get("add") or [])
        if added - RESTRICTED_ADDABLE_CAPABILITIES:
            problems.append(f"Capabilities: {where} adds {sorted(added - RESTRICTED_ADDABLE_CAPABILITIES)}")
    return problems


def restricted_violations(pod_spec: dict, annotations: dict | None = None) -> list[str]:
    """Every rule of the "restricted" profile that this pod spec breaks, as "Control: what" lines."""
    return _baseline(pod_spec, annotations or {}) + _restricted_only(pod_spec)


def numeric_non_root_user(pod_spec: dict) -> list[str]:
    """finegate's own rule on top of "restricted": every container's uid is a number other than 0, set in the
    manifest. runAsNonRoot alone lets the image's USER decide, and the kubelet refuses to start a container
    whose image names its user by name or runs as root (finegate's data and train images do)."""
    pod_uid = (pod_spec.get("securityContext") or {}).get("runAsUser")
    problems = []
    for where, c in _containers(pod_spec):
        uid = (c.get("securityContext") or {}).get("runAsUser", pod_uid)
        if not isinstance(uid, int) or isinstance(uid, bool) or uid == 0:
            problems.append(f"{where}: runs as {uid!r}, not a numeric non-root runAsUser")
    return problems


def pipeline_task_violations(platform_executors: dict, executors: list[str]) -> dict[str, list[str]]:
    """What keeps each pipeline task's pod out of a `restricted` namespace, read from the compiled pipeline's
    kfp-kubernetes platform spec (`platforms.kubernetes.deploymentSpec.executors`).

    KFP 2.17's backend already gives every executor container allowPrivilegeEscalation: false, capabilities
    drop ALL and seccompProfile RuntimeDefault (backend/src/v2/compiler/argocompiler/security_context.go at
    the pinned ref); what only the pipeline can add is the user: `kfp.kubernetes.set_security_context(task,
    run_as_user=..., run_as_non_root=True)`. Volumes from the platform spec are all restricted-allowed kinds
    (PVC, Secret, ConfigMap, emptyDir, generic ephemeral); a hostPath cannot be expressed there.
    """
    problems: dict[str, list[str]] = {}
    for executor in executors:
        sc = (platform_executors.get(executor) or {}).get("securityContext") or {}
        found = []
        if sc.get("runAsNonRoot") is not True:
            found.append("Running as Non-root: no runAsNonRoot: true (kfp.kubernetes.set_security_context)")
        uid = sc.get("runAsUser")
        if uid is None or int(uid) == 0:
            found.append(f"runs as {uid!r}, not a numeric non-root runAsUser")
        if found:
            problems[executor] = found
    return problems
