"""The deployment files agree with themselves, with example.env and with the CLI.

Docker does not run here, so docker-compose.yml and the Dockerfile are read as data: every
service is built or pulled, waits only on services that exist and can reach the state it
waits for, every ``${VAR}`` compose requires is in example.env (which leaves what the
image sets to the image), the containers see what .env says (its ``${…}`` filled in here
by compose's rules), the secrets file stays out of the build, the processes have
healthchecks that tell a live process from a dead one, and every ``switchboard …``
command a container runs parses in the real CLI.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli.main import app
from infra.settings import describe_variables
from infra.settings_reference import (
    COMPOSE_OPTIONAL_VARIABLES,
    COMPOSE_REQUIRES,
    COMPOSE_SUPPLIES,
    COMPOSE_VARIABLES,
    EXAMPLE_ENV,
    IMAGE_ENV,
    README,
    ROOT,
)
from tests.standins.server_base import Reply, Request, StandInServer

DEPLOY = EXAMPLE_ENV.parent
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"

SWITCHBOARD_PROCESSES = ("api", "worker", "scheduler")
"""The long-running services of the Switchboard image."""

_PROBE_URL = re.compile(r"http://127\.0\.0\.1:(?P<port>\d+)(?P<path>/\w+)")


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _dockerfile_argvs() -> dict[str, list[str]]:
    """The exec-form commands of the Dockerfile's CMD and HEALTHCHECK."""
    argvs = {}
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "CMD":
            argvs["Dockerfile CMD"] = json.loads(arguments)
        elif keyword == "HEALTHCHECK":
            _options, _, command = arguments.partition(" CMD ")
            argvs["Dockerfile HEALTHCHECK"] = json.loads(command)
    return argvs


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "ENV":
            for token in shlex.split(arguments):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def _healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list), "an exec-form healthcheck: no shell in between"
    assert test[0] == "CMD", test
    return [str(word) for word in test[1:]]


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def _container_argvs() -> dict[str, list[str]]:
    """Every command a container runs: each service's command and healthcheck, the image's."""
    argvs = _dockerfile_argvs()
    for name, service in _services().items():
        if "command" in service:
            argvs[f"{name} command"] = _argv(service["command"])
        if "test" in service.get("healthcheck", {}):
            argvs[f"{name} healthcheck"] = _healthcheck_argv(service)
    return argvs


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _dotenv(text: str) -> dict[str, str]:
    """The variables an env file sets: its NAME=value lines (example.env quotes nothing)."""
    pairs = (line.partition("=") for line in text.splitlines())
    return {name: value for name, equals, value in pairs if equals and not name.startswith("#")}


def _example_env_names() -> set[str]:
    """The variables example.env sets (uncommented lines)."""
    return set(_dotenv(EXAMPLE_ENV.read_text()))


class ComposeRefusedError(Exception):
    """Compose would refuse to start: a variable it requires (``${NAME:?…}``) is missing."""


# ${VAR}, ${VAR:-default}, ${VAR?error}… and $VAR; $$ is a literal dollar.
_SUBSTITUTION = re.compile(
    r"\$\$|\$\{(?P<braced>\w+)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}|\$(?P<bare>\w+)"
)


def _interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with its ``${…}`` filled from ``variables`` by compose's rules.

    ``${NAME-default}`` takes the default when NAME is unset, ``${NAME:-default}`` also when
    it is empty; ``?`` refuses where ``-`` would take the default; ``$$`` is a dollar.
    """

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["braced"] or match["bare"]
        operator = match["operator"] or ""
        value = variables.get(name)
        if value is None or (value == "" and operator.startswith(":")):
            if operator.endswith("?"):
                raise ComposeRefusedError(f"{name}: {match['argument']}")
            return match["argument"] if operator.endswith("-") else ""
        return match["argument"] if operator.endswith("+") else value

    return _SUBSTITUTION.sub(substitute, text)


def _resolved(node: Any, variables: Mapping[str, str]) -> Any:
    """A compose document with every string interpolated, as ``docker compose config``."""
    if isinstance(node, str):
        return _interpolate(node, variables)
    if isinstance(node, dict):
        return {key: _resolved(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value, variables) for value in node]
    return node


SECRETS = {
    "GRAFANA_ADMIN_PASSWORD": "grafana-password",
    "SWITCHBOARD_CALLKARO__WEBHOOK_SECRET": "callkaro-webhook-secret",
}
"""What an operator must fill in before compose starts."""


def _filled_in(**changes: str) -> dict[str, str]:
    """infra/deploy/.env copied from example.env, its secrets set, then ``changes`` made."""
    return _dotenv(EXAMPLE_ENV.read_text()) | SECRETS | changes


def _container_env(name: str, dotenv: Mapping[str, str]) -> dict[str, str]:
    """What a container of the image sees when ``dotenv`` is infra/deploy/.env.

    The image's ENV, overridden by ``env_file`` (that same .env), overridden by the
    service's ``environment``, whose ``${…}`` compose fills from .env (``--env-file``).
    """
    service = _resolved(_compose(), dotenv)["services"][name]
    assert "build" in service, f"{name} does not run the image"
    assert service["env_file"] == ".env"
    environment = service["environment"]
    assert isinstance(environment, dict)
    image_env = {key: value for key, value in _dockerfile_env().items() if key != "PATH"}
    return image_env | dict(dotenv) | {key: str(value) for key, value in environment.items()}


IMAGE_SERVICES = ("migrate", *SWITCHBOARD_PROCESSES)
"""The services that run the Switchboard image."""


def test_every_service_has_an_image_or_a_build() -> None:
    for name, service in _services().items():
        assert "image" in service or "build" in service, name


def test_every_dependency_is_a_service_that_can_reach_the_awaited_state() -> None:
    services = _services()
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {dependency: {"condition": "service_started"} for dependency in depends_on}
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            condition = options.get("condition", "service_started")
            target = services[dependency]
            if condition == "service_healthy":
                assert "test" in target.get("healthcheck", {}), f"{dependency} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dependency} is not a one-shot"


def test_every_service_but_the_one_shot_comes_back_after_a_crash_or_a_reboot() -> None:
    restarts = {name: service.get("restart", "no") for name, service in _services().items()}

    assert restarts.pop("migrate") == "no"
    assert restarts == dict.fromkeys(restarts, "unless-stopped")
    assert {"redis", "postgres", "prometheus", "alertmanager", "grafana"} <= set(restarts)


def _published(port: str | int | dict[str, Any]) -> tuple[str | None, str]:
    """(host address, host port) of a ``ports`` entry; no address: every interface."""
    if isinstance(port, dict):
        return port.get("host_ip"), str(port.get("published", ""))
    # [[ADDRESS:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL], the address possibly in brackets.
    parts = str(port).partition("/")[0].rsplit(":", 2)
    if len(parts) == 3:
        return parts[0].strip("[]"), parts[1]
    return None, parts[0]  # a lone container port is published on a random host port


def test_only_the_api_is_published_beyond_the_hosts_loopback() -> None:
    # Prometheus and Alertmanager have no login, and Docker's published ports bypass the
    # host's firewall: what is not the API stays on 127.0.0.1.
    published = {
        name: [_published(port) for port in service.get("ports", [])]
        for name, service in _services().items()
    }
    beyond = {
        name: [port for port in ports if port[0] not in {"127.0.0.1", "::1"}]
        for name, ports in published.items()
    }

    assert {name: ports for name, ports in beyond.items() if ports} == {"api": [(None, "8000")]}
    for name, port in (("prometheus", "9090"), ("alertmanager", "9093"), ("grafana", "3000")):
        assert ("127.0.0.1", port) in published[name], name


def test_the_processes_redis_and_postgres_have_healthchecks() -> None:
    services = _services()
    for name in (*SWITCHBOARD_PROCESSES, "redis", "postgres"):
        assert "test" in services[name].get("healthcheck", {}), name


def _redis_options(dotenv: Mapping[str, str]) -> dict[str, str]:
    command = _resolved(_compose(), dotenv)["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    return dict(zip(command[1::2], command[2::2], strict=True))


def test_redis_refuses_writes_at_a_memory_limit_instead_of_evicting_messages() -> None:
    # noeviction applies only once Redis holds maxmemory: without one, Redis grows until
    # the kernel kills it.
    default, _description = COMPOSE_OPTIONAL_VARIABLES["REDIS_MAXMEMORY"]

    assert _redis_options(_filled_in())["--maxmemory-policy"] == "noeviction"
    assert _redis_options(_filled_in())["--maxmemory"] == default == "1gb"
    assert _redis_options(_filled_in(REDIS_MAXMEMORY=""))["--maxmemory"] == default
    assert _redis_options(_filled_in(REDIS_MAXMEMORY="4gb"))["--maxmemory"] == "4gb"
    assert _redis_options(_filled_in())["--appendfsync"] == "everysec"


def test_postgres_is_healthy_only_once_it_accepts_tcp_connections() -> None:
    # On the first boot the postgres image's initialisation server answers on the unix
    # socket alone; the services connect over TCP.
    argv = _healthcheck_argv(_services()["postgres"])

    assert argv[0] == "pg_isready"
    assert argv[argv.index("-h") + 1] == "127.0.0.1"


def test_a_one_shot_of_the_image_does_not_inherit_the_apis_healthcheck() -> None:
    for name, service in _services().items():
        if "build" in service and service.get("restart") == "no":
            assert service.get("healthcheck") == {"disable": True}, name


def test_the_interpolation_reader_follows_composes_rules() -> None:
    variables = {"SET": "value", "EMPTY": ""}

    assert _interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d}", variables) == "value d d"
    assert _interpolate("${SET-d} ${EMPTY-d} ${UNSET-d}", variables) == "value  d"
    assert (
        _interpolate("${SET:?e} ${EMPTY?e} $SET $$SET ${UNSET}.", variables)
        == "value  value $SET ."
    )
    assert _interpolate("${SET:+r} ${EMPTY:+r} ${EMPTY+r}", variables) == "r  r"
    for required in ("${EMPTY:?set it}", "${UNSET:?set it}", "${UNSET?set it}"):
        with pytest.raises(ComposeRefusedError, match="set it"):
            _interpolate(required, variables)


def test_the_stacks_redis_and_postgres_serve_unless_env_names_others() -> None:
    in_stack = {
        "SWITCHBOARD_BROKER__URL": "redis://redis:6379/0",
        "SWITCHBOARD_DATABASE__URL": (
            "postgresql+psycopg://switchboard:switchboard@postgres:5432/switchboard"
        ),
    }
    own = {
        "SWITCHBOARD_BROKER__URL": "rediss://cache.example.com:6380/2",
        "SWITCHBOARD_DATABASE__URL": "postgresql+psycopg://app@db.example.com/app",
    }
    assert {urlsplit(url).hostname for url in in_stack.values()} <= set(_services())
    assert _dotenv(EXAMPLE_ENV.read_text()).keys() >= own.keys()  # left empty, to fill in

    for name in IMAGE_SERVICES:
        assert _container_env(name, _filled_in()).items() >= in_stack.items(), name
        assert _container_env(name, _filled_in(**own)).items() >= own.items(), name


def test_local_adapters_compose_allows_give_way_to_what_env_says_even_empty() -> None:
    supplied, _why = COMPOSE_SUPPLIES["SWITCHBOARD_ALLOW_LOCAL"]

    for name in IMAGE_SERVICES:
        as_shipped = _container_env(name, _filled_in())
        assert as_shipped["SWITCHBOARD_ALLOW_LOCAL"] == supplied, name
        emptied = _container_env(name, _filled_in(SWITCHBOARD_ALLOW_LOCAL=""))
        assert emptied["SWITCHBOARD_ALLOW_LOCAL"] == "", name
        chosen = _container_env(name, _filled_in(SWITCHBOARD_ALLOW_LOCAL="analyzer"))
        assert chosen["SWITCHBOARD_ALLOW_LOCAL"] == "analyzer", name


def test_example_env_leaves_what_compose_supplies_to_compose() -> None:
    # ${NAME-value}: an empty value in .env would win over compose's, so example.env must
    # not set one; it says instead what compose sets.
    supplied = {
        match["braced"]: match["argument"]
        for text in _strings(_compose()["x-environment"])
        for match in _SUBSTITUTION.finditer(text)
        if match["operator"] == "-"
    }
    assert supplied == {name: value for name, (value, _why) in COMPOSE_SUPPLIES.items()}
    assert not set(COMPOSE_SUPPLIES) & _example_env_names()
    for name, (value, _why) in COMPOSE_SUPPLIES.items():
        assert f"# {name}=" in EXAMPLE_ENV.read_text(), f"{name} should stay documented"
        assert value in EXAMPLE_ENV.read_text(), name


def test_every_variable_compose_requires_is_set_in_example_env() -> None:
    # Without a default (${NAME:-…}, ${NAME-…}) or an alternative (${NAME:+…}), compose
    # needs the variable: ${NAME:?…} refuses to start, ${NAME} warns and takes "".
    required = {
        match["braced"] or match["bare"]
        for text in _strings(_compose())
        for match in _SUBSTITUTION.finditer(text)
        if match[0] != "$$" and not (match["operator"] or "").endswith(("-", "+"))
    }
    assert required == set(SECRETS)
    # A setting compose requires is in example.env already, saying so; any other variable
    # is in its docker compose section.
    assert required <= _example_env_names()
    assert required == set(COMPOSE_REQUIRES) | set(COMPOSE_VARIABLES), "example.env is stale"
    settings = {name for name, _default, _description in describe_variables()}
    assert set(COMPOSE_REQUIRES) <= settings
    assert not set(COMPOSE_VARIABLES) & settings


def test_example_env_sets_every_other_variable_compose_reads_to_composes_default() -> None:
    settings = {name for name, _default, _description in describe_variables()}
    defaults = {
        match["braced"]: match["argument"]
        for text in _strings(_compose())
        for match in _SUBSTITUTION.finditer(text)
        if match["operator"] == ":-" and match["braced"] not in settings
    }

    optional = {name: default for name, (default, _) in COMPOSE_OPTIONAL_VARIABLES.items()}
    assert defaults == optional
    assert _dotenv(EXAMPLE_ENV.read_text()).items() >= optional.items()


def test_compose_refuses_to_start_until_env_sets_each_secret_it_requires() -> None:
    _resolved(_compose(), _filled_in())  # every secret set: compose starts
    for name in SECRETS:
        unset = {key: value for key, value in _filled_in().items() if key != name}
        for variables in (_filled_in(**{name: ""}), unset):
            message = re.escape(f"{name}: set {name} in infra/deploy/.env")
            with pytest.raises(ComposeRefusedError, match=message):
                _resolved(_compose(), variables)

    secret = SECRETS["SWITCHBOARD_CALLKARO__WEBHOOK_SECRET"]
    for name in IMAGE_SERVICES:
        assert _container_env(name, _filled_in())["SWITCHBOARD_CALLKARO__WEBHOOK_SECRET"] == secret


def test_example_env_leaves_what_the_image_sets_to_the_image() -> None:
    image_env = {name: value for name, value in _dockerfile_env().items() if name != "PATH"}
    assert image_env == IMAGE_ENV
    assert not set(IMAGE_ENV) & _example_env_names()
    for name in IMAGE_ENV:
        assert f"# {name}=" in EXAMPLE_ENV.read_text(), f"{name} should stay documented"


def test_the_image_serves_metrics_and_probes_beyond_the_containers_loopback() -> None:
    # Set by the image, not compose, so that Prometheus reaches them wherever the image runs
    # (docker run, a cluster); compose and example.env leave it to the image.
    every_interface = "0.0.0.0"  # noqa: S104 (what is checked)
    for name in SWITCHBOARD_PROCESSES:
        variable = f"SWITCHBOARD_{name.upper()}__PROMETHEUS_HOST"
        assert _dockerfile_env()[variable] == every_interface, variable
        assert variable not in _services()[name]["environment"], variable
        assert _container_env(name, _filled_in())[variable] == every_interface, variable


def test_both_stages_start_from_the_same_pinned_python_and_debian() -> None:
    bases = [
        arguments.split()[0]
        for keyword, arguments in _dockerfile_instructions()
        if keyword == "FROM"
    ]

    assert len(bases) == 2
    assert bases[0] == bases[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", bases[0]), bases[0]


def test_the_dependencies_are_installed_before_the_sources_are_copied() -> None:
    # So that a change to the code reuses the dependencies' layer.
    instructions = _dockerfile_instructions()
    build = instructions[: [keyword for keyword, _ in instructions].index("FROM", 1)]
    dependencies = build.index(("RUN", "uv sync --frozen --no-dev --no-install-project"))
    project = build.index(("RUN", "uv sync --frozen --no-dev --no-editable"))
    copied_before = [arguments for keyword, arguments in build[:dependencies] if keyword == "COPY"]
    copied_after = [
        arguments.split()[0]
        for keyword, arguments in build[dependencies:project]
        if keyword == "COPY"
    ]

    assert copied_before == ["pyproject.toml uv.lock ./"]
    assert dependencies < project
    # Every package the project installs, and the readme its metadata names.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    assert copied_after == [pyproject["project"]["readme"], *packages]


def test_the_images_data_dir_is_created_for_its_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [arguments for keyword, arguments in final_stage if keyword == "USER"]
    assert users == ["switchboard"]
    runs = [arguments for keyword, arguments in final_stage if keyword == "RUN"]
    data_dir = '"$SWITCHBOARD_DATA_DIR"'
    assert f"mkdir -p {data_dir} && chown switchboard:switchboard {data_dir}" in runs


def test_the_image_is_built_from_the_checkout_and_never_pulled() -> None:
    # Without pull_policy: build, `up` reuses an existing switchboard:latest (the old code
    # after a git pull) and `docker compose pull` looks for it on Docker Hub.
    services = _services()
    assert {name for name, service in services.items() if "build" in service} == set(IMAGE_SERVICES)
    for name in IMAGE_SERVICES:
        assert services[name]["image"] == "switchboard:latest", name
        assert services[name]["pull_policy"] == "build", name
    start = "docker compose -f infra/deploy/docker-compose.yml --env-file infra/deploy/.env up -d"
    for document in (README.read_text(), COMPOSE.read_text()):
        assert start in document
        assert document.count(start) == document.count(f"{start} --build")


def test_the_secrets_env_file_stays_out_of_the_images_build_context() -> None:
    build = _services()["api"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    ignored = DOCKERFILE.with_name("Dockerfile.dockerignore").read_text().splitlines()
    assert "**/.env" in ignored


def test_each_process_is_probed_on_the_port_it_serves() -> None:
    services = _services()
    ports = {
        "api": _argv(services["api"]["command"])[-1],
        "worker": services["worker"]["environment"]["SWITCHBOARD_WORKER__PROMETHEUS_PORT"],
        "scheduler": services["scheduler"]["environment"]["SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT"],
    }
    assert _argv(services["api"]["command"])[-2] == "--port"
    for name in SWITCHBOARD_PROCESSES:
        url = _PROBE_URL.search(" ".join(_healthcheck_argv(services[name])))
        assert url is not None, name
        assert (url["port"], url["path"]) == (ports[name], "/healthz"), name
    dockerfile_cmd = _dockerfile_argvs()["Dockerfile CMD"]
    assert dockerfile_cmd[dockerfile_cmd.index("--port") + 1] == "8000"
    assert _dockerfile_argvs()["Dockerfile HEALTHCHECK"] == _healthcheck_argv(services["api"])


_SWITCHBOARD_ARGVS = {
    where: argv for where, argv in _container_argvs().items() if argv[0] == "switchboard"
}


def test_the_containers_run_the_switchboard_commands_expected() -> None:
    # Guards the test below against passing on an empty list.
    commands = {" ".join(argv[1:2]) for argv in _SWITCHBOARD_ARGVS.values()}
    assert commands == {"api", "worker", "scheduler", "db"}


@pytest.mark.parametrize("argv", _SWITCHBOARD_ARGVS.values(), ids=_SWITCHBOARD_ARGVS.keys())
def test_every_switchboard_command_a_container_runs_parses_in_the_cli(argv: list[str]) -> None:
    # --help is eager: the command path and every option name must exist, and nothing runs.
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


class LivenessStandIn(StandInServer):
    """Answers every path 200, like a live process's /healthz."""

    def handle(self, request: Request) -> Reply:  # noqa: ARG002 (every path is alive)
        return Reply(200, {"status": "ok"})


_PYTHON_PROBES = {
    where: argv for where, argv in _container_argvs().items() if argv[:2] == ["python", "-c"]
}


def _run_probe(argv: list[str], port: int) -> int:
    code = _PROBE_URL.sub(lambda m: f"http://127.0.0.1:{port}{m['path']}", argv[2])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("argv", _PYTHON_PROBES.values(), ids=_PYTHON_PROBES.keys())
def test_a_healthcheck_passes_on_200_and_fails_on_an_error_or_no_answer(argv: list[str]) -> None:
    with LivenessStandIn() as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert _run_probe(argv, port) == 0
        server.fail_next(503)
        assert _run_probe(argv, port) != 0
    assert _run_probe(argv, port) != 0  # nothing listens any more
    assert [request.path for request in server.requests] == ["/healthz", "/healthz"]


def test_the_python_probes_are_the_processes_and_the_images() -> None:
    # Guards the test above against passing on an empty list.
    expected = {f"{name} healthcheck" for name in SWITCHBOARD_PROCESSES}
    assert set(_PYTHON_PROBES) == {*expected, "Dockerfile HEALTHCHECK"}
