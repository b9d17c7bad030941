"""Who may do what: bearer-token identities and RBAC over the stored Roles and RoleBindings.

The administrator's token may do anything. A ServiceAccount's token may do what the Roles
bound to it (by RoleBindings in the request's namespace) allow; ClusterRoles are not served,
so a binding to one grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canarist.sandbox.store import ObjectStore, ResourceKey, StoreError

RBAC = "rbac.authorization.k8s.io"
ROLES = ResourceKey(RBAC, "v1", "roles")
ROLE_BINDINGS = ResourceKey(RBAC, "v1", "rolebindings")


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()
    admin: bool = False

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(f"system:serviceaccount:{namespace}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                    "system:authenticated"))


@dataclass(frozen=True)
class Attributes:
    """One request as RBAC sees it."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _subject_matches(subject: Any, identity: Identity, binding_namespace: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return identity.user == f"system:serviceaccount:{namespace}:{name}"
    if kind == "User":
        return identity.user == name
    if kind == "Group":
        return name in identity.groups
    return False


def _rule_allows(rule: Any, attrs: Attributes) -> bool:
    if not isinstance(rule, dict):
        return False
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    names = rule.get("resourceNames") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if "*" not in groups and attrs.group not in groups:
        return False
    wanted = attrs.full_resource
    if not any(r in ("*", wanted) or (attrs.subresource and r == f"{attrs.resource}/*")
               for r in resources):
        return False
    return not names or (bool(attrs.name) and attrs.name in names)


def authorize(store: ObjectStore, identity: Identity, attrs: Attributes) -> bool:
    if identity.admin:
        return True
    if not attrs.namespace:
        return False  # cluster-scoped access needs a ClusterRole, which is not served
    for binding in store.list(ROLE_BINDINGS, attrs.namespace):
        ref = binding.get("roleRef") or {}
        if ref.get("kind") != "Role" or ref.get("apiGroup", RBAC) != RBAC:
            continue
        if not any(_subject_matches(s, identity, attrs.namespace)
                   for s in binding.get("subjects") or []):
            continue
        try:
            role = store.get(ROLES, attrs.namespace, str(ref.get("name")))
        except StoreError:
            continue
        if any(_rule_allows(rule, attrs) for rule in role.get("rules") or []):
            return True
    return False


def forbidden_message(identity: Identity, attrs: Attributes) -> str:
    what = attrs.full_resource if not attrs.group else f"{attrs.full_resource}.{attrs.group}"
    subject = f'{what} "{attrs.name}"' if attrs.name else what
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (f'{subject} is forbidden: User "{identity.user}" cannot {attrs.verb} resource '
            f'"{attrs.full_resource}" in API group "{attrs.group}" {scope}')
