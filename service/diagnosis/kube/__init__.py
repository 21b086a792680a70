"""``kube.*`` probes: the target's pods, workload, events, logs, resources, network policies and volumes.

Read-only: these probes only ever call the read methods of ``service.clients.kube.KubeClient``.
"""
