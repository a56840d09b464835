"""A small NetworkPolicy evaluator (networking.k8s.io/v1 semantics), enough to ask of k8s/network "may pod A
open a connection to pod B on port P?" without a cluster.

A connection is allowed when the source's egress and the destination's ingress both allow it. A direction is
open for a pod no policy of its namespace selects for that direction (policyTypes); once one does, only
what some rule of those policies lists gets through. Rules: a peer with podSelector alone means pods of the
policy's namespace; namespaceSelector alone, every pod of the matching namespaces; both, the matching pods
of the matching namespaces; ipBlock matches no pod (it is for addresses outside the cluster). No `from`/`to`
means every peer, no `ports` every port; a named port is resolved against the destination's containers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # {name: (containerPort, protocol)}
    name: str = ""


def namespace_labels(namespace: str, extra: dict | None = None) -> dict:
    # The API server puts this label on every namespace (Kubernetes >= 1.21).
    return {"kubernetes.io/metadata.name": namespace, **(extra or {})}


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); {} matches all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        ok = {"In": present and labels.get(key) in values, "NotIn": not present or labels.get(key) not in values,
              "Exists": present, "DoesNotExist": not present}[op]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict, policy_namespace: str, pod: Pod, namespaces: dict[str, dict]) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selector_matches(peer["namespaceSelector"], namespaces.get(pod.namespace,
                                                                                 namespace_labels(pod.namespace)))
    else:
        in_namespace = pod.namespace == policy_namespace
    if not in_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], pod.labels)


def _port_matches(rule_ports: list | None, port: int, protocol: str, destination: Pod) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            resolved = destination.ports.get(wanted)
            if resolved and resolved == (port, protocol):
                return True
        elif wanted <= port <= entry.get("endPort", wanted):
            return True
    return False


def _direction_allows(policies: list[dict], subject: Pod, peer: Pod, direction: str, port: int, protocol: str,
                      destination: Pod, namespaces: dict[str, dict]) -> bool:
    """Whether `subject`'s policies for `direction` ("Ingress" / "Egress") let traffic with `peer` through."""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = []
    for policy in policies:
        meta, spec = policy["metadata"], policy["spec"]
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
        if meta.get("namespace") == subject.namespace and direction in types \
                and selector_matches(spec.get("podSelector"), subject.labels):
            selecting.append(policy)
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, policy["metadata"]["namespace"], peer, namespaces) for p in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol, destination):
                return True
    return False


def allowed(policies: list[dict], source: Pod, destination: Pod, port: int, protocol: str = "TCP",
            namespaces: dict[str, dict] | None = None) -> bool:
    """May `source` open a connection to `destination` on `port`? `namespaces`: {name: labels}."""
    namespaces = namespaces or {}
    return (_direction_allows(policies, source, destination, "Egress", port, protocol, destination, namespaces)
            and _direction_allows(policies, destination, source, "Ingress", port, protocol, destination, namespaces))
