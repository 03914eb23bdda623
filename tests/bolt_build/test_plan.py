"""The build plan and image state, without touching the file system."""

from __future__ import annotations

import pytest

from bolt.build.plan import ImageState, apply, make_plan, run_argv, step_key
from bolt.build.syntax import DockerfileError, parse

MULTI = """\
ARG BASE=busybox
FROM $BASE AS deps
RUN echo deps
FROM $BASE AS unused
RUN echo never
FROM deps AS app
COPY --from=deps /x /y
"""


def plan_of(text: str, target: str | None = None, args: dict[str, str] | None = None):
    return make_plan(parse(text, "Dockerfile.bolt"), target, args or {})


def test_target_builds_only_the_stages_it_needs() -> None:
    plan = plan_of(MULTI)
    assert [plan.stages[i].name for i in plan.order] == ["deps", "app"]
    assert plan.stages[0].base == "busybox"
    assert [plan.stages[i].name for i in plan_of(MULTI, "unused").order] == ["unused"]


def test_build_arg_overrides_arg_before_from() -> None:
    plan = plan_of(MULTI, args={"BASE": "debian:bookworm", "NOPE": "1"})
    assert plan.stages[0].base == "debian:bookworm"
    assert plan.unused_build_args == ("NOPE",)


def test_unknown_target_is_an_error_naming_the_stages() -> None:
    with pytest.raises(DockerfileError) as err:
        plan_of(MULTI, "nosuch")
    assert "no stage named 'nosuch'" in str(err.value)
    assert err.value.hint == "stages: deps, unused, app"


def test_instruction_before_from_is_refused_at_its_line() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile.bolt:2: RUN before the first FROM"):
        plan_of("ARG A=1\nRUN true\nFROM x\n")


def test_dockerfile_without_from_is_refused() -> None:
    with pytest.raises(DockerfileError, match="has no FROM"):
        plan_of("ARG A=1\n")


def state_after(lines: str) -> ImageState:
    df = parse("FROM x\n" + lines, "f")
    plan = make_plan(df, None, {})
    state = ImageState(config={"Cmd": ["/bin/sh"]}, layers=(), history=(), key="k")
    for instr in plan.stages[0].body:
        state = apply(state, instr, df.escape)
    return state


def test_env_sees_values_from_before_its_own_line() -> None:
    state = state_after("ENV A=1\nENV A=2 B=$A\nWORKDIR /srv\nWORKDIR app\n")
    assert state.config["Env"] == ["A=2", "B=1"]
    assert state.config["WorkingDir"] == "/srv/app"


def test_entrypoint_drops_an_inherited_cmd_but_keeps_one_set_here() -> None:
    assert "Cmd" not in state_after('ENTRYPOINT ["run"]\n').config
    kept = state_after('CMD ["arg"]\nENTRYPOINT ["run"]\n').config
    assert kept["Cmd"] == ["arg"] and kept["Entrypoint"] == ["run"]


def test_shell_form_uses_shell_instruction() -> None:
    state = state_after('SHELL ["/bin/bash", "-euc"]\nCMD echo hi\n')
    assert state.config["Cmd"] == ["/bin/bash", "-euc", "echo hi"]


def test_metadata_instructions_fill_the_config() -> None:
    config = state_after(
        'LABEL a=1 "b c"="d e"\nEXPOSE 80 53/udp\nVOLUME /data\nUSER app\nSTOPSIGNAL SIGINT\n'
    ).config
    assert config["Labels"] == {"a": "1", "b c": "d e"}
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["User"] == "app" and config["StopSignal"] == "SIGINT"


def test_lone_heredoc_is_the_script() -> None:
    df = parse("FROM x\nRUN <<EOF\necho a\nEOF\nRUN cat <<EOF > /f\nbody\nEOF\n", "f")
    plan = make_plan(df, None, {})
    state = ImageState(config={}, layers=(), history=(), key="k")
    first, second = plan.stages[0].body
    assert run_argv(state, first) == ["/bin/sh", "-c", "echo a\n"]
    assert run_argv(state, second) == ["/bin/sh", "-c", "cat <<EOF > /f\nbody\nEOF"]


def test_cache_key_ignores_line_numbers_but_not_content() -> None:
    a = parse("FROM x\nRUN echo hi\n", "f")
    b = parse("FROM x\n\n\n# moved\nRUN echo hi\n", "f")
    ka = step_key("p", make_plan(a, None, {}).stages[0].body[0], {"argv": ["echo hi"]})
    kb = step_key("p", make_plan(b, None, {}).stages[0].body[0], {"argv": ["echo hi"]})
    assert ka == kb
    assert ka != step_key("q", make_plan(a, None, {}).stages[0].body[0], {"argv": ["echo hi"]})


def test_expansion_error_in_from_names_its_line() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile.bolt:2: BASE: required"):
        plan_of("ARG BASE\nFROM ${BASE:?required}\n")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("EXPOSE 80 99999", "EXPOSE '99999': '99999' is not a port number"),
        ("EXPOSE 0", "EXPOSE '0': '0' is not a port number"),
        ("EXPOSE 80/quic", "EXPOSE '80/quic': unknown protocol 'quic'"),
        ("EXPOSE 90-80", "EXPOSE '90-80': the range ends before it starts"),
        ("EXPOSE 1-65535", "a range of 65535 ports is too wide"),
        ("EXPOSE 8080:80", "EXPOSE '8080:80': '8080:80' is not a port number"),
        ("EXPOSE \u0668\u0660", "is not a port number"),
        ("STOPSIGNAL SIGFOO", "STOPSIGNAL: signal 'SIGFOO' is unknown"),
        ("STOPSIGNAL 999", "STOPSIGNAL: signal '999' is out of range"),
        ("STOPSIGNAL 0", "STOPSIGNAL: signal '0' is out of range"),
        ("STOPSIGNAL SIGRTMIN+99", "STOPSIGNAL: signal 'SIGRTMIN+99' is unknown"),
    ],
)
def test_bad_expose_and_stopsignal_are_refused_with_their_line(line: str, message: str) -> None:
    # refused when the plan is made: before any step (the RUN on line 2) could run
    with pytest.raises(DockerfileError) as err:
        plan_of(f"FROM x\nRUN echo would-run\n{line}\n")
    assert str(err.value.message).startswith("Dockerfile.bolt:3: ")
    assert message in err.value.message
    assert err.value.exit_code == 2


def test_expose_and_stopsignal_forms_docker_accepts() -> None:
    config = state_after('EXPOSE "8000-8002" 53/UDP 9/sctp\nSTOPSIGNAL rtmin+3\n').config
    assert config["ExposedPorts"] == {
        "8000/tcp": {},
        "8001/tcp": {},
        "8002/tcp": {},
        "53/udp": {},
        "9/sctp": {},
    }
    assert config["StopSignal"] == "rtmin+3"
    assert state_after("STOPSIGNAL 9\n").config["StopSignal"] == "9"


def test_expose_from_a_variable_is_checked_once_expanded() -> None:
    from bolt.errors import InvalidInput

    # the plan cannot know $PORT; the step refuses it (the builder adds file:line)
    with pytest.raises(InvalidInput, match=r"EXPOSE '70000/tcp': '70000' is not a port"):
        state_after("ENV PORT=70000\nEXPOSE $PORT/tcp\n")
    with pytest.raises(InvalidInput, match=r"STOPSIGNAL: signal 'NOPE' is unknown"):
        state_after("ENV SIG=NOPE\nSTOPSIGNAL $SIG\n")
