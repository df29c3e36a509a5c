"""The container, read (no Docker engine runs where the suite does): the image is built in two stages, the
last of which installs prebuilt wheels only and has no compiler; it runs as an unprivileged user that owns
the instance folder it writes (the volume's starting owner), and has a HEALTHCHECK on /healthz. The compose
file and .env.example agree, and the variables the README documents exist in the configuration."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPILERS = ("build-essential", "gcc", "g++", "clang", "cc", "make", "python3-dev", "libc6-dev")


@dataclass
class Stage:
    image: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.steps if ins == instruction]

    def last(self, instruction: str) -> str | None:
        found = self.all(instruction)
        return found[-1] if found else None


def stages(path: Path) -> list[Stage]:
    """The Dockerfile's stages: instructions with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        lines.append(current.strip())
        current = ""
    args: dict[str, str] = {}
    out: list[Stage] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not out:
            key, _, default = rest.partition("=")
            args[key.strip()] = default.strip()
        elif instruction == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], ""), words[0])
            out.append(Stage(image, words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        else:
            out[-1].steps.append((instruction, rest.strip()))
    return out


@pytest.fixture(scope="module")
def image() -> tuple[Stage, Stage]:
    built = stages(ROOT / "Dockerfile")
    assert len(built) >= 2, "a builder stage and the image"
    return built[0], built[-1]


def apt_installs(stage: Stage) -> list[str]:
    packages = []
    for run in stage.all("RUN"):
        for command in run.split("&&"):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages += [w for w in words[2:] if not w.startswith("-")]
    return packages


def test_the_builder_compiles_and_the_image_only_installs_its_wheels(image):
    build, final = image
    assert build.name and set(COMPILERS) & set(apt_installs(build)), "the builder has a compiler"
    assert any("pip wheel" in run and "--wheel-dir /wheels" in run for run in build.all("RUN"))
    assert final.image == build.image, "the wheels run where they were built (same Python, same libc)"
    assert not set(COMPILERS) & set(apt_installs(final)), apt_installs(final)
    assert f"--from={build.name} /wheels /tmp/wheels" in final.all("COPY")
    installs = [run for run in final.all("RUN") if "pip install" in run]
    only_wheels = ("--no-index", "--only-binary=:all:", "--find-links=/tmp/wheels")
    assert installs and all(all(flag in run for flag in only_wheels) for run in installs), installs
    assert "postgresql-client" in apt_installs(final)  # pg_dump / pg_restore for backup and restore


def test_gunicorns_c_parser_is_a_dependency_the_builder_exists_for():
    """gunicorn_h1c ships as source only (a C extension): the reason for the builder stage."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"gunicorn_h1c[><=]', pyproject)


def test_the_image_runs_unprivileged_and_owns_its_instance_folder(image):
    _, final = image
    user = final.last("USER")
    assert user and user.split(":")[0] not in ("root", "0"), user
    name = user.split(":")[0]
    env = " ".join(final.all("ENV"))
    instance = re.search(r"PHR_INSTANCE_PATH=(\S+)", env)[1]
    assert final.last("VOLUME") in (f'["{instance}"]', instance)
    runs = " && ".join(final.all("RUN"))
    assert re.search(rf"useradd [^&]*--system[^&]* {name}\b", runs), "a system user, not nobody"
    assert re.search(rf"install -d -o {name} -g \S+ -m 07\d\d {re.escape(instance)}", runs) \
        or re.search(rf"chown [^&]*{name}[^&]* {re.escape(instance)}", runs), "the user owns the instance"
    # The owner is set before VOLUME (a named volume starts as a copy of the folder, owner included).
    steps = [ins for ins, _ in final.steps]
    assert steps.index("VOLUME") > steps.index("RUN") and steps.index("USER") > steps.index("VOLUME")


def test_the_image_has_a_healthcheck_on_healthz(image):
    _, final = image
    check = final.last("HEALTHCHECK")
    assert check and "CMD" in check
    port = final.last("EXPOSE")
    assert f"127.0.0.1:{port}/healthz" in check
    assert "--port" in final.last("CMD") and port in final.last("CMD")


def test_compose_shares_the_instance_volume_and_every_variable_is_in_env_example():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    final = stages(ROOT / "Dockerfile")[-1]
    instance = re.search(r"PHR_INSTANCE_PATH=(\S+)", " ".join(final.all("ENV")))[1]
    for service in ("gateway", "worker"):
        s = compose["services"][service]
        assert f"instance:{instance}" in s["volumes"], service
        assert s["environment"]["PHR_INSTANCE_PATH"] == instance
        assert s["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert compose["services"]["worker"]["healthcheck"] == {"disable": True}  # it serves no HTTP
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^(\w+)=", example, re.M))
    assert used <= listed, used - listed
    # No secret is filled in: the secrets stay empty in the example.
    for secret in ("POSTGRES_PASSWORD", "PHR_MASTER_KEY", "PHR_METRICS_TOKEN"):
        assert re.search(rf"^{secret}=$", example, re.M), secret
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_the_documented_variables_are_read_by_the_configuration():
    from gateway.config import ENV_KEYS

    readme = (ROOT / "README.md").read_text()
    for variable in ("PHR_METRICS_TOKEN", "PHR_ACCESS_LOG"):
        assert variable in ENV_KEYS and f"`{variable}`" in readme
