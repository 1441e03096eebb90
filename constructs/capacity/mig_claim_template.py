"""`MigClaimTemplate`: a DRA ResourceClaimTemplate for one MIG profile, which model pods reference."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..kubernetes import KubernetesObject


def claim_template_name(profile: str) -> str:
    return "mig-" + profile.replace(".", "-")


@dataclass(frozen=True)
class MigClaimTemplateProps:
    profile: str
    namespace: str


class MigClaimTemplate(KubernetesObject):
    """Creates one `resource.k8s.io/v1` ResourceClaimTemplate asking the `mig.nvidia.com` DeviceClass
    for exactly one slice of `profile`."""

    def __init__(self, scope: Construct, id: str, *, props: MigClaimTemplateProps) -> None:
        super().__init__(scope, id, body={
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": claim_template_name(props.profile), "namespace": props.namespace},
            "spec": {"spec": {"devices": {"requests": [{
                "name": "mig",
                "exactly": {
                    "deviceClassName": "mig.nvidia.com",
                    "allocationMode": "ExactCount",
                    "count": 1,
                    "selectors": [{"cel": {"expression": f'device.attributes["gpu.nvidia.com"].profile == "{props.profile}"'}}],
                },
            }]}}},
        })
