"""Agent constructs: one `AgentWorkload` per `agents:` entry (identity, queue, checkpoint store, KEDA
scaling, NetworkPolicies, router key), the CPU NodePool agents run on, and the KEDA operator's
read-only view of agent queue depths."""
