"""Runs nanoidp, an independent OAuth 2.0 / OpenID Connect provider from PyPI, on 127.0.0.1 for a test."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from support import Service, free_port

API_SCOPES = ["read:todos", "read:billing", "write:todos"]


class NanoIDP:
    def __init__(self, audience: str = "urn:todos-api", clients: list[dict] | None = None,
                 dynamic_registration: bool = False, refresh_rotation: bool = True,
                 token_minutes: int = 60) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.config = Path(tempfile.mkdtemp(prefix="nanoidp-"))
        self.clients = clients or [
            {"client_id": "interop-client", "client_secret": "interop-secret", "redirect_uris": []},
        ]
        scopes = ["openid", "profile", "email", "offline_access", *API_SCOPES]
        client_yaml = "".join(self._client_yaml(client, scopes) for client in self.clients)
        (self.config / "settings.yaml").write_text(f"""config_version: 1
server:
  host: "127.0.0.1"
  port: {self.port}
oauth:
  issuer: "{self.issuer}"
  audience: "{audience}"
  token_expiry_minutes: {token_minutes}
  refresh_token_rotation: {str(refresh_rotation).lower()}
  scopes_supported: [{", ".join(f'"{scope}"' for scope in scopes)}]
  dynamic_registration:
    enabled: {str(dynamic_registration).lower()}
  clients:
{client_yaml}logging:
  level: "WARNING"
  verbose_logging: false
""")
        (self.config / "users.yaml").write_text("""config_version: 1
users:
  alice:
    password: "alice-password"
    email: "alice@example.com"
  bob:
    password: "bob-password"
    email: "bob@example.com"
""")
        self.service = Service(
            "nanoidp",
            [sys.executable, "-m", "nanoidp", "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port)],
            {},
            self.issuer + "/.well-known/openid-configuration",
        )

    @staticmethod
    def _client_yaml(client: dict, scopes: list[str]) -> str:
        redirects = "".join(f'\n        - "{uri}"' for uri in client.get("redirect_uris", []))
        allowed = ", ".join(f'"{scope}"' for scope in client.get("allowed_scopes", scopes))
        method = client.get("token_endpoint_auth_method", "client_secret_basic")
        return f"""    - client_id: "{client['client_id']}"
      client_secret: "{client.get('client_secret', '')}"
      token_endpoint_auth_method: "{method}"
      allowed_scopes: [{allowed}]
      redirect_uris:{redirects if redirects else " []"}
"""

    def stop(self) -> None:
        self.service.stop()
