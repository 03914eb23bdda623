"""What the orchestrator reports: one container's state, and what an ``up`` did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bolt.surge.plan import Plan


@dataclass(frozen=True)
class ServiceState:
    service: str
    name: str
    number: int
    status: str
    health: str | None
    exit_code: int | None
    restart_count: int
    image: str
    ports: list[dict[str, Any]]
    networks: dict[str, str]
    id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "name": self.name,
            "number": self.number,
            "status": self.status,
            "health": self.health,
            "exit_code": self.exit_code,
            "restart_count": self.restart_count,
            "image": self.image,
            "ports": self.ports,
            "networks": self.networks,
            "id": self.id,
        }


@dataclass
class UpResult:
    plan: Plan
    built: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
