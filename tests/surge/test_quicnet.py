"""The quic network driver's additions to a service, pure (no root): the service whose
image carries ``bolt.quic.listener`` has its UDP port published and the project's listener
identity mounted; every service gets the listener's certificate to verify it with."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config import Boltfile
from bolt.config.errors import BoltfileError
from bolt.runtime.intent import MountIntent, PortMapping
from bolt.surge import intents, quicnet
from nvcontrol.ct.stack import SHIPPED

LISTENER = {"Labels": {"bolt.quic.listener": "3000"}}
ROOT = Path("/var/lib/bolt-test")


def _seed(extra: str = "") -> Boltfile:
    text = SHIPPED.read_text()
    return Boltfile.from_text(text.replace('encryption = true', f"encryption = true\n{extra}"),
                              SHIPPED)  # fmt: skip


def test_the_seed_boltfile_is_accepted_as_written_and_publishes_the_listener() -> None:
    bf = Boltfile.from_text(SHIPPED.read_text(), SHIPPED)
    assert bf.network.driver == "quic" and bf.network.publish is None
    manager = quicnet.extend(intents.service_intent(bf, "gpu-manager"), bf, ROOT, LISTENER)
    assert manager.ports == (PortMapping("0.0.0.0", 3000, 3000, "udp"),)  # every address
    assert manager.labels[quicnet.PUBLISHED_LABEL] == "0.0.0.0:3000/udp"
    base = str(ROOT / "quic" / "nvcontrol")
    assert (
        MountIntent("bind", "/etc/bolt/quic/listener", base + "/listener", True) in manager.mounts
    )
    assert manager.env["BOLT_QUIC_IDENTITY"] == "/etc/bolt/quic/listener"
    web = quicnet.extend(intents.service_intent(bf, "web-interface"), bf, ROOT, {"Labels": {}})
    assert web.ports == intents.service_intent(bf, "web-interface").ports  # 8080 only
    assert MountIntent("bind", "/etc/bolt/quic/trust", base + "/trust", True) in web.mounts
    assert web.env["BOLT_QUIC_TRUST"] == "/etc/bolt/quic/trust/cert.pem"
    assert "BOLT_QUIC_IDENTITY" not in web.env  # the key stays with the listener
    assert web.validate() == web and manager.validate() == manager


@pytest.mark.parametrize(
    "publish, ports",
    [
        ('publish = "127.0.0.1:0"', (PortMapping("127.0.0.1", 0, 3000, "udp"),)),
        ('publish = "4433"', (PortMapping("0.0.0.0", 4433, 3000, "udp"),)),
        ('publish = "0.0.0.0:0"', (PortMapping("0.0.0.0", 0, 3000, "udp"),)),
        ('publish = "[::1]:4433"', (PortMapping("::1", 4433, 3000, "udp"),)),
        ("publish = false", ()),
    ],
)
def test_network_publish_says_where_the_listener_is_published(
    publish: str, ports: tuple[PortMapping, ...]
) -> None:
    bf = _seed(publish)
    manager = quicnet.extend(intents.service_intent(bf, "gpu-manager"), bf, ROOT, LISTENER)
    assert manager.ports == ports
    assert manager.env["BOLT_QUIC_IDENTITY"]  # the identity is there, published or not


@pytest.mark.parametrize("bad", ['publish = "localhost:80"', 'publish = "1.2.3.4:70000"',
                                 "publish = true", "publish = 1.5"])  # fmt: skip
def test_a_bad_publish_value_names_the_key(bad: str) -> None:
    with pytest.raises(BoltfileError, match=r"network\.publish"):
        _seed(bad)


def test_other_networks_are_left_alone() -> None:
    bf = Boltfile.from_text(SHIPPED.read_text().replace('driver = "quic"', 'driver = "bridge"'),
                            SHIPPED)  # fmt: skip
    intent = intents.service_intent(bf, "gpu-manager")
    assert quicnet.extend(intent, bf, ROOT, LISTENER) == intent
    plain = Boltfile.from_text(SHIPPED.read_text().replace("encryption = true", ""), SHIPPED)
    assert quicnet.extend(intents.service_intent(plain, "gpu-manager"), plain, ROOT, LISTENER) \
        == intents.service_intent(plain, "gpu-manager")  # fmt: skip


def test_the_listener_label_must_name_a_port() -> None:
    assert quicnet.listener_port(LISTENER) == 3000
    assert quicnet.listener_port({"Labels": {"bolt.quic.listener": "3000/udp"}}) == 3000
    for bad in ("", "x", "0", "70000"):
        assert quicnet.listener_port({"Labels": {"bolt.quic.listener": bad}}) is None
    assert quicnet.listener_port(None) is None


def test_the_identity_is_made_once_and_kept(tmp_path: Path) -> None:
    from bolt.network import identity

    bf = Boltfile.from_text(SHIPPED.read_text(), SHIPPED)
    quicnet.ensure_identity(tmp_path, bf)
    base = tmp_path / "quic" / "nvcontrol"
    pem = (base / "listener" / "cert.pem").read_text()
    assert (base / "trust" / "cert.pem").read_text() == pem
    assert (base / "listener" / "key.pem").stat().st_mode & 0o077 == 0
    quicnet.ensure_identity(tmp_path, bf)
    assert (base / "listener" / "cert.pem").read_text() == pem  # kept: clients pin it
    assert identity.PINNED_NAME in str(identity.load_cert(pem).extensions)
