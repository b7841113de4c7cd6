"""Put bundles on devices and keep them running: `edgekit deploy` (upload, verify, atomic
switch, health wait, rollback, fleets) and `edgekit status`. Device side: never TensorFlow."""

from edgekit.deploy.fleet import check, exit_code, read_inventory, rollout, summary
from edgekit.deploy.layout import data_dir
from edgekit.deploy.push import DeployConfig, HostResult, Target, deploy_host, host_status, prepare
from edgekit.deploy.status import local_status

__all__ = [
    "DeployConfig", "HostResult", "Target", "check", "data_dir", "deploy_host", "exit_code", "host_status",
    "local_status", "prepare", "read_inventory", "rollout", "summary",
]
