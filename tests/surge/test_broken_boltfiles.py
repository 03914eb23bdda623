"""Twenty broken Boltfiles: each names the key and line, exits 2, shows no traceback."""

from __future__ import annotations

import pytest

from bolt.cli import main
from tests.surge.conftest import write_project

# (id, Boltfile text, [(line, text the message must contain), ...])
BROKEN = [
    ("malformed-toml", '[services.web]\nimage = "busybox\n', [(2, "invalid TOML")]),
    (
        "unknown-service-key",
        '[services.web]\nimage = "busybox"\nportz = ["80:80"]\n',
        [(3, "services.web.portz: unknown key 'portz'; did you mean 'ports'?")],
    ),
    (
        "unknown-top-level-key",
        'projet = "x"\n[services.web]\nimage = "busybox"\n',
        [(1, "projet: unknown key 'projet'; did you mean 'project'?")],
    ),
    (
        "unknown-nested-key",
        '[services.web]\nimage = "busybox"\n\n[services.web.healthcheck]\ntest = "true"\nretires = 3\n',
        [(6, "services.web.healthcheck.retires: unknown key 'retires'; did you mean 'retries'?")],
    ),
    (
        "wrong-type-bool",
        '[services.web]\nimage = "busybox"\nprivileged = "yes"\n',
        [(3, "services.web.privileged: expected a boolean (true or false), got a string")],
    ),
    (
        "wrong-type-int",
        '[services.web]\nimage = "busybox"\npids_limit = "many"\n',
        [(3, "services.web.pids_limit: expected an integer, got a string")],
    ),
    (
        "wrong-type-table",
        '[services.web]\nimage = "busybox"\nhealthcheck = "curl localhost"\n',
        [(3, "services.web.healthcheck: expected a table, got a string")],
    ),
    (
        "wrong-type-image",
        "[services.web]\nimage = 3\n",
        [(2, "services.web.image: expected a string, got an integer (3)")],
    ),
    (
        "invalid-port",
        '[services.web]\nimage = "busybox"\nports = ["8080:99999"]\n',
        [(3, "services.web.ports: entry 0: port 99999 in '8080:99999' is out of range")],
    ),
    (
        "invalid-port-text",
        '[services.web]\nimage = "busybox"\nports = ["http:80"]\n',
        [(3, "invalid port 'http'")],
    ),
    (
        "invalid-restart",
        '[services.web]\nimage = "busybox"\nrestart = "on-failure:x"\n',
        [(3, "services.web.restart: invalid retry count 'x'")],
    ),
    (
        "invalid-depends-condition",
        '[services.web]\nimage = "busybox"\ndepends_on.db.condition = "healthy"\n'
        '[services.db]\nimage = "busybox"\n',
        [(3, "services.web.depends_on.db.condition: expected one of")],
    ),
    (
        "invalid-network-driver",
        '[services.web]\nimage = "busybox"\n[network]\ndriver = "overlay"\n',
        [(4, "network.driver: expected one of 'bridge', 'host', 'none' or 'quic'")],
    ),
    (
        "empty-image",
        '[services.web]\nimage = ""\n',
        [(2, "services.web.image: must not be empty")],
    ),
    (
        "nan-cpus",
        '[services.web]\nimage = "busybox"\ncpus = nan\n',
        [(3, "services.web.cpus: cpus must be a positive finite number")],
    ),
    (
        "neither-image-nor-build",
        '[services.web]\nports = ["80:80"]\n',
        [(1, "services.web: needs 'image', 'build' or 'capsule'")],
    ),
    (
        "missing-build-directory",
        '[services.web]\nbuild = "./nowhere"\n',
        [(2, "services.web.build: build directory")],
    ),
    (
        "depends-on-unknown-service",
        '[services.web]\nimage = "busybox"\ndepends_on = ["db"]\n',
        [(3, "services.web.depends_on: unknown service 'db'")],
    ),
    (
        "depends-on-cycle",
        '[services.a]\nimage = "busybox"\ndepends_on = ["b"]\n'
        '[services.b]\nimage = "busybox"\ndepends_on = ["a"]\n',
        [(3, "dependency cycle: a -> b -> a")],
    ),
    (
        "all-semantic-errors-together",
        '[services.web]\nimage = "busybox"\nports = ["8080:80"]\n'
        '[services.api]\nbuild = "./missing"\nports = ["8080:81"]\ndepends_on = ["ghost"]\n'
        '[services.lonely]\nvolumes = ["cache:/cache"]\n',
        [
            (5, "build directory"),
            (6, "host port 8080/tcp is already published by service 'web'"),
            (7, "unknown service 'ghost'"),
            (8, "services.lonely: needs 'image', 'build' or 'capsule'"),
            (9, "named volume 'cache' is not declared under [volumes]"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_boltfile_is_rejected_with_key_and_line(project_dir, capsys, text, expected):
    path = write_project(project_dir, text)
    assert main(["surge", "-f", str(path), "validate"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line, fragment in expected:
        located = [row for row in err.splitlines() if f"{path}:{line}:" in row]
        assert any(fragment in row for row in located), (line, fragment, err)
    assert "nothing was started" in err


def test_validate_json_lists_every_problem(project_dir, capsys):
    path = write_project(project_dir, BROKEN[-1][1])
    assert main(["surge", "-f", str(path), "validate", "--json"]) == 2
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert [p["line"] for p in doc["problems"]] == [5, 6, 7, 8, 9]
