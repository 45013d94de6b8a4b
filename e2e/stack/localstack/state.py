"""What one state directory remembers: ports, S3 backend, credentials; the env file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .settings import BIN_DIR, BRIDGE_IP, REGION, P

SHARED_WITH_PODS = frozenset({"s3", "mlflow"})


@dataclass
class State:
    ports: dict[str, int] = field(default_factory=dict)
    s3_backend: str = ""
    access_key: str = ""
    secret_key: str = ""
    pod_network: bool = False

    @classmethod
    def load(cls) -> State:
        try:
            return cls(**json.loads(P.state.read_text()))
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self) -> None:
        P.root.mkdir(parents=True, exist_ok=True)
        P.state.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        P.state.chmod(0o600)

    def url(self, name: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.host(name)}:{self.ports[name]}"

    def host(self, name: str) -> str:
        """Where a component listens. S3 and MLflow serve pods too (model servers
        load models and write prediction logs): with the pod network they listen
        on the bridge's address, which host processes reach as well; everything
        else stays on loopback."""
        return BRIDGE_IP if self.pod_network and name in SHARED_WITH_PODS else "127.0.0.1"

    def env(self) -> dict[str, str]:
        """What tests, the operator and a shell need to reach the stack."""
        s3 = self.url("s3")
        return {
            "KUBECONFIG": str(P.kubeconfig),
            "MLFLOW_TRACKING_URI": self.url("mlflow"),
            "MLFLOW_S3_ENDPOINT_URL": s3,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": s3,
            "TRAILBOSS_S3_ENDPOINT_URL": s3,
            "TRAILBOSS_S3_ENDPOINT": s3,
            "TRAILBOSS_S3_BACKEND": self.s3_backend,
            "TRAILBOSS_STACK_DIR": str(P.root),
            "TRAILBOSS_STACK_BIN": str(BIN_DIR),
            "TRAILBOSS_STACK_NETWORK": "on" if self.pod_network else "off",
            "TRAILBOSS_PROMETHEUS_URL": self.url("prometheus"),
            **(self._gateway_env() if self.pod_network else {}),
        }

    def _gateway_env(self) -> dict[str, str]:
        return {
            "TRAILBOSS_GATEWAY_URL": self.url("gateway"),
            "TRAILBOSS_GATEWAY": "trailboss-gateway/trailboss",  # namespace/name
        }


def write_env_file(state: State) -> None:
    lines = [f"export {k}={shell_quote(v)}" for k, v in state.env().items()]
    # The stack's own kubectl and helm first, matching the API server's version.
    lines.append(f'export PATH={shell_quote(str(BIN_DIR))}:"$PATH"')
    P.env.write_text("\n".join(lines) + "\n")
    P.env.chmod(0o600)


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"
