#!/usr/bin/env python3
"""Checks docker/ without a Docker engine (part of `just test`).

    .penstock/tools/venv/bin/python scripts/check-docker.py              # check docker/
    .penstock/tools/venv/bin/python scripts/check-docker.py --self-test  # prove the checks bite

docker/compose.yml is validated against the official Compose Specification schema (vendored
in docker/schema/, see its README), then checked against the repository: every file it
references exists (and the Dockerfile's build context holds what the build reads), every
PENSTOCK_* variable is a real configuration key, dependencies name services and wait on a
condition, every long-running service has a health check on the port it serves and a
restart policy (and the one-shot `migrate` a bounded retry), every host port is bound to
127.0.0.1, the `cluster` profile's RabbitMQ nodes join the default one (same image and
Erlang cookie, classic config peer discovery, their own volumes) and every role is pointed
at all of them, the scaled `database` service has no fixed name or host port, Prometheus
scrapes every role, the Grafana dashboard queries only metrics penstock exports, and the
S3/AMQP settings agree across MinIO, RabbitMQ and penstock. Prints one line per check;
exits 1 if any fails.

--self-test breaks an in-memory copy of the files in one way at a time (an unknown
PENSTOCK_ variable, a missing file, a typo in a metric name, …) and fails unless the
expected check reports exactly that.

Needs PyYAML and jsonschema_rs, pinned in the test tools' virtualenv
(scripts/test-tools.sh).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import fnmatch
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

try:
    import jsonschema_rs
    import yaml
except ImportError as e:  # the wrong Python: say which one to use
    sys.exit(f"check-docker: {e}; run it with .penstock/tools/venv/bin/python (bash scripts/test-tools.sh installs it)")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = "docker/compose.yml"
DOCKERFILE = "docker/Dockerfile"
SCHEMA = "docker/schema/compose-spec.json"
PROMETHEUS = "docker/prometheus/prometheus.yml"
RABBITMQ_DEFINITIONS = "docker/rabbitmq/definitions.json"
RABBITMQ_CONF_DIR = "docker/rabbitmq"  # its *.conf files, mounted into the RabbitMQ nodes
HEALTHCHECK_SCRIPT = "docker/penstock-healthcheck"
CONFIG_RS = "crates/config/src/lib.rs"
METRIC_SOURCES = ["crates/workers/src/metrics.rs", "crates/api/src/metrics.rs"]

# PENSTOCK_* variables read outside KEYS (crates/config/src/lib.rs, crates/penstock/src/main.rs).
EXTRA_VARIABLES = {
    "PENSTOCK_CONFIG",
    "PENSTOCK_LOG",
    "PENSTOCK_LOG_FORMAT",
    "PENSTOCK_WEBHOOK_URL",
    "PENSTOCK_WEBHOOK_SECRET",
    "PENSTOCK_WEBHOOK_MIN_SEVERITY",
    "PENSTOCK_DATASETS_DIR",
    "PENSTOCK_MIGRATIONS_DIR",
}
# The RabbitMQ node that runs alone without a profile, and the profile that adds the others.
DEFAULT_RABBITMQ = "rabbitmq"
CLUSTER_PROFILE = "cluster"
RABBITMQ_DATA = "/var/lib/rabbitmq"
ERLANG_COOKIE = "/var/lib/rabbitmq/.erlang.cookie"
# Restarts a failing one-shot may get: enough to outlast a slow start, few enough to stop.
MAX_ONE_SHOT_RETRIES = 10
# Series Prometheus itself adds to every scrape; a dashboard may chart them.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip


class Problem(Exception):
    """An input a check needs is missing or unreadable."""


@dataclass
class Project:
    """Everything the checks read, parsed; the self-test mutates copies of it."""

    root: Path
    texts: dict[str, str] = field(default_factory=dict)
    parsed: dict[str, object] = field(default_factory=dict)
    parse_errors: list[str] = field(default_factory=list)
    # Paths (relative to the root) treated as absent, for the self-test.
    missing: set[str] = field(default_factory=set)

    def exists(self, path: Path) -> bool:
        try:
            rel = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            rel = path.as_posix()
        return rel not in self.missing and path.exists()

    def get(self, rel: str):
        if rel in self.parsed:
            return self.parsed[rel]
        raise Problem(f"{rel} did not parse or is missing")

    @property
    def compose(self) -> dict:
        return self.get(COMPOSE)

    @property
    def services(self) -> dict:
        services = self.compose.get("services")
        if not isinstance(services, dict):
            raise Problem(f"{COMPOSE} has no services")
        return services

    @property
    def compose_dir(self) -> Path:
        return self.root / Path(COMPOSE).parent


def load(root: Path, overrides: dict[str, str] | None = None) -> Project:
    """Reads and parses every file the checks use; `overrides` replaces a file's text."""
    project = Project(root=root)
    overrides = overrides or {}
    grafana = sorted(
        p.relative_to(root).as_posix()
        for p in (root / "docker/grafana").rglob("*")
        if p.suffix in (".yml", ".yaml", ".json")
    )
    rabbitmq_confs = sorted(p.relative_to(root).as_posix() for p in (root / RABBITMQ_CONF_DIR).glob("*.conf"))
    names = [COMPOSE, DOCKERFILE, SCHEMA, PROMETHEUS, RABBITMQ_DEFINITIONS, HEALTHCHECK_SCRIPT,
             ".dockerignore", CONFIG_RS, "Cargo.toml", *METRIC_SOURCES, *grafana, *rabbitmq_confs]  # fmt: skip
    for rel in names:
        if rel in overrides:
            text = overrides[rel]
        else:
            try:
                text = (root / rel).read_text(encoding="utf-8")
            except OSError as e:
                project.parse_errors.append(f"{rel}: cannot read: {e.strerror}")
                continue
        project.texts[rel] = text
        try:
            if rel.endswith((".yml", ".yaml")):
                # Through JSON: YAML anchors would otherwise leave services sharing one dict,
                # and a self-test mutation of one would change them all.
                project.parsed[rel] = json.loads(json.dumps(yaml.safe_load(text)))
            elif rel.endswith(".json"):
                project.parsed[rel] = json.loads(text)
            elif rel.endswith(".toml"):
                project.parsed[rel] = tomllib.loads(text)
        except (yaml.YAMLError, json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
            project.parse_errors.append(f"{rel}: {' '.join(str(e).split())}")
    return project


# ---- helpers ---------------------------------------------------------------------------------


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a dict, from either Compose syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict((item.split("=", 1) + [""])[:2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def port_of(address: str) -> str:
    return address.rsplit(":", 1)[-1]


def is_penstock(project: Project, service: dict) -> bool:
    """Built from docker/Dockerfile (every role, and the migrate one-shot)."""
    build = service.get("build")
    if not build:
        return False
    if isinstance(build, str):
        build = {"context": build}
    context = project.compose_dir / build.get("context", ".")
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    return dockerfile.resolve() == (project.root / DOCKERFILE).resolve()


def one_shots(services: dict) -> set[str]:
    """Services something waits on to complete: they exit, so they need no health check."""
    done = set()
    for service in services.values():
        deps = service.get("depends_on")
        if isinstance(deps, dict):
            done |= {n for n, d in deps.items() if isinstance(d, dict) and d.get("condition") == "service_completed_successfully"}
    return done


def healthcheck_enabled(service: dict) -> bool:
    check = service.get("healthcheck")
    if not isinstance(check, dict) or check.get("disable") in (True, "true"):
        return False
    test = check.get("test")
    return bool(test) and test not in (["NONE"], "NONE")


def served_port(service: dict) -> str | None:
    """The port a penstock service serves /health and /metrics on, from its environment."""
    env = environment(service)
    for key in ("PENSTOCK_HEALTH_ADDR", "PENSTOCK_METRICS_ADDR", "PENSTOCK_API_ADDR"):
        if env.get(key):
            return port_of(env[key])
    return None


def metrics_port(service: dict) -> str | None:
    env = environment(service)
    for key in ("PENSTOCK_METRICS_ADDR", "PENSTOCK_API_ADDR"):
        if env.get(key):
            return port_of(env[key])
    return None


def bind_mounts(project: Project, service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount; named volumes are skipped."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            if source.startswith((".", "/", "~")):
                mounts.append((project.compose_dir / source, rest.split(":")[0]))
        elif isinstance(volume, dict) and volume.get("type") == "bind":
            mounts.append((project.compose_dir / volume["source"], volume.get("target", "")))
    return mounts


def named_volumes(service: dict) -> list[tuple[str, str]]:
    """(volume name, container path) of each named volume; bind mounts are skipped."""
    volumes = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            if rest and not source.startswith((".", "/", "~")):
                volumes.append((source, rest.split(":")[0]))
        elif isinstance(volume, dict) and volume.get("type") == "volume" and volume.get("source"):
            volumes.append((volume["source"], volume.get("target", "")))
    return volumes


def image_repo(image: str) -> str:
    """The repository of an image reference, without tag or Docker Hub prefixes."""
    repo = image.rpartition(":")[0] if ":" in image.split("/")[-1] else image
    return repo.removeprefix("docker.io/").removeprefix("library/")


def rabbitmq_nodes(services: dict) -> dict[str, dict]:
    """The services that run a RabbitMQ node (the default one and any cluster node)."""
    return {n: s for n, s in services.items() if image_repo(str(s.get("image") or "")) == "rabbitmq"}


def rabbitmq_config(p: Project, service: dict) -> dict[str, str]:
    """The settings of the rabbitmq.conf-format files mounted into a RabbitMQ node: its
    rabbitmq.conf, then conf.d/*.conf in name order (the order RabbitMQ reads them, a later
    file overriding an earlier one). Read through the project, so the self-test can edit them."""
    files = []
    for source, target in bind_mounts(p, service):
        if target == "/etc/rabbitmq/rabbitmq.conf" or (target.startswith("/etc/rabbitmq/conf.d/") and target.endswith(".conf")):
            files.append((target != "/etc/rabbitmq/rabbitmq.conf", target, source))
    settings: dict[str, str] = {}
    for _, _, source in sorted(files):
        try:
            rel = source.resolve().relative_to(p.root).as_posix()
        except ValueError:
            rel = None
        text = p.texts.get(rel) if rel else None
        if text is None:
            if rel in p.missing or not source.is_file():
                continue  # check_files reports it
            text = source.read_text(encoding="utf-8")
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                settings[key.strip()] = value.strip()
    return settings


def amqp_hosts(value: str) -> list[str | None]:
    """The host of each amqp:// URL in a PENSTOCK_AMQP_URL (a comma-separated list)."""
    return [urlsplit(url.strip()).hostname for url in value.split(",") if url.strip()]


def cookie_source(p: Project, service: dict) -> str | None:
    """Where a RabbitMQ node's Erlang cookie comes from: the file of a secret its entrypoint
    copies to ERLANG_COOKIE (None: it installs none, so the image generates its own)."""
    text = shell_text(service)
    if ERLANG_COOKIE not in text:
        return None
    top = p.compose.get("secrets") or {}
    for secret in service.get("secrets") or []:
        source = secret if isinstance(secret, str) else secret.get("source", "")
        target = source if isinstance(secret, str) else secret.get("target") or source
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        if re.search(re.escape(path) + r"(?![\w.-])", text):
            item = top.get(source) or {}
            return item.get("file") or f"secret {source}"
    return None


def restart_policy(service: dict) -> tuple[str, int | None]:
    """(mode, maximum retries or None) the container gets: deploy.restart_policy if given
    (Compose prefers it), else `restart` ("on-failure:5" → ("on-failure", 5))."""
    policy = (service.get("deploy") or {}).get("restart_policy")
    if isinstance(policy, dict):
        condition = policy.get("condition", "any")
        return {"none": "no", "any": "always"}.get(condition, condition), policy.get("max_attempts")
    mode, _, count = str(service.get("restart") or "no").partition(":")
    return mode, int(count) if count.isdigit() else None


def shell_text(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        parts.extend(value if isinstance(value, list) else [value] if value else [])
    return "\n".join(str(p) for p in parts)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    if current:
        lines.append(current)
    out = []
    for line in lines:
        word, _, args = line.partition(" ")
        out.append((word.upper(), " ".join(args.split())))
    return out


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `rel` (a path in the context) out; the last match wins."""
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        pat = pat[2:] if pat.startswith("./") else pat
        candidates = [pat, pat[3:]] if pat.startswith("**/") else [pat]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            ignored = not negate
    return ignored


def build_inputs(project: Project) -> list[str]:
    """Paths `cargo build` reads: manifests, the lock file, workspace members, the files
    the crates embed (include_str!, include_bytes!, sqlx::migrate!), and .sqlx/ (the offline
    data of compile-time checked queries) when a crate has any."""
    inputs = ["Cargo.toml", "Cargo.lock"]
    members = project.get("Cargo.toml").get("workspace", {}).get("members", [])
    for member in members:
        inputs += [p.relative_to(project.root).as_posix() for p in sorted(project.root.glob(member)) if p.is_dir()]
    for source in sorted((project.root / "crates").rglob("*.rs")):
        text = source.read_text(encoding="utf-8")
        if re.search(r"\bsqlx::query(?:_as|_scalar)?!", text):
            inputs.append(".sqlx")
        for macro, arg in re.findall(r'(include_str|include_bytes|migrate)!\(\s*"([^"]+)"', text):
            # include_*! is relative to the file; sqlx::migrate! to the crate's manifest.
            base = source.parent
            if macro == "migrate":
                base = next(p for p in source.parents if (p / "Cargo.toml").exists())
            target = (base / arg).resolve()
            try:
                inputs.append(target.relative_to(project.root).as_posix())
            except ValueError:
                pass
    return sorted(set(inputs))


def did_you_mean(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    where = f"not in {CONFIG_RS} KEYS nor a known extra"
    return f" ({where}; did you mean {close[0]}?)" if close else f" ({where})"


def config_variables(project: Project) -> set[str]:
    text = project.texts.get(CONFIG_RS, "")
    match = re.search(r"const KEYS: &\[&str\] = &\[(.*?)\];", text, re.S)
    if not match:
        raise Problem(f"cannot find `const KEYS` in {CONFIG_RS}")
    return {f"PENSTOCK_{key.upper()}" for key in re.findall(r'"([a-z0-9_]+)"', match.group(1))} | EXTRA_VARIABLES


def exported_series(project: Project) -> dict[str, str]:
    """Every series name penstock exports, mapped to the metric that produces it. Histograms
    whose name matches a bucket matcher render as _bucket/_sum/_count; others as summaries."""
    kinds: dict[str, str] = {}
    suffixes, prefixes, fulls = [], [], []
    for rel in METRIC_SOURCES:
        text = project.texts.get(rel)
        if text is None:
            raise Problem(f"{rel} is missing")
        consts = dict(re.findall(r'const ([A-Z][A-Z0-9_]*): &str = "([a-z0-9_]+)";', text))
        for kind, arg in re.findall(r'\b(counter|gauge|histogram)!\(\s*("?[A-Za-z0-9_]+"?)', text):
            name = arg.strip('"') if arg.startswith('"') else consts.get(arg)
            if name and name.startswith("penstock_"):
                kinds[name] = kind
        suffixes += re.findall(r'Matcher::Suffix\("([^"]+)"', text)
        prefixes += re.findall(r'Matcher::Prefix\("([^"]+)"', text)
        fulls += re.findall(r'Matcher::Full\("([^"]+)"', text)
    series = {}
    for name, kind in kinds.items():
        if kind != "histogram":
            series[name] = name
            continue
        bucketed = name.endswith(tuple(suffixes)) or name.startswith(tuple(prefixes)) or name in fulls
        for suffix in (["_bucket"] if bucketed else [""]) + ["_sum", "_count"]:
            series[name + suffix] = name
    if not series:
        raise Problem(f"found no metrics in {', '.join(METRIC_SOURCES)}")
    return series


def promql_metrics(expr: str) -> list[str]:
    """Metric names an expression selects (strings, label matchers, ranges, grouping labels,
    function names, keywords and Grafana variables removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    s = re.sub(r"\$\{?\w+\}?", " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = []
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group(0).lower() in PROMQL_KEYWORDS:
            continue
        names.append(m.group(0))
    return names


def dashboard_exprs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for v in node.values() for e in dashboard_exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in dashboard_exprs(v)]
    return []


def dashboard_uids(node) -> set[str]:
    if isinstance(node, dict):
        uids = set()
        ds = node.get("datasource")
        if isinstance(ds, dict) and isinstance(ds.get("uid"), str) and not ds["uid"].startswith(("$", "-- ")):
            uids.add(ds["uid"])
        return uids.union(*(dashboard_uids(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(dashboard_uids(v) for v in node)) if node else set()
    return set()


# ---- the checks: each returns (what was checked, problems) -------------------------------------


def check_parse(p: Project):
    problems = list(p.parse_errors)
    return f"{len(p.parsed)} YAML/JSON/TOML files parse (compose, Prometheus, Grafana, RabbitMQ, schema)", problems


def check_schema(p: Project):
    schema = p.get(SCHEMA)
    validator = jsonschema_rs.validator_for(schema)
    problems = []
    for error in validator.iter_errors(p.compose):
        where = "/".join(str(x) for x in error.instance_path) or "(top level)"
        problems.append(f"{COMPOSE} at {where}: {error.message}")
    if "version" in p.compose:
        problems.append(f"{COMPOSE} has a top-level `version:`; the Compose Specification makes it obsolete: remove it")
    return f"{COMPOSE} is valid against the Compose Specification ({SCHEMA}), no `version:`", problems[:20]


def check_files(p: Project):
    problems, count = [], 0
    for name, service in p.services.items():
        build = service.get("build")
        if build:
            build = {"context": build} if isinstance(build, str) else build
            context = p.compose_dir / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            count += 2
            if not (p.exists(context) and context.is_dir()):
                problems.append(f"service {name}: build context {build.get('context')} is not a folder")
            if not p.exists(dockerfile):
                problems.append(f"service {name}: Dockerfile {dockerfile.resolve().relative_to(p.root)} does not exist")
        for env_file in [service["env_file"]] if isinstance(service.get("env_file"), str) else service.get("env_file") or []:
            path = env_file if isinstance(env_file, str) else env_file.get("path", "")
            count += 1
            if not p.exists(p.compose_dir / path):
                problems.append(f"service {name}: env_file {path} does not exist")
        mounts = bind_mounts(p, service)
        for source, _ in mounts:
            count += 1
            if not p.exists(source):
                problems.append(f"service {name}: bind-mounted {source.resolve().relative_to(p.root)} does not exist")
        # Files a command uses through a bind mount (minio-init's data file).
        text = shell_text(service)
        for source, target in mounts:
            if not target:
                continue
            for used in sorted(set(re.findall(re.escape(target.rstrip("/")) + r"/[\w./-]+", text))):
                count += 1
                host = source / used[len(target.rstrip("/")) + 1 :]
                if not p.exists(host):
                    problems.append(f"service {name}: its command uses {used}, i.e. {host.resolve().relative_to(p.root)}, which does not exist")
    for kind in ("configs", "secrets"):
        for name, item in (p.compose.get(kind) or {}).items():
            if isinstance(item, dict) and "file" in item:
                count += 1
                if not p.exists(p.compose_dir / item["file"]):
                    problems.append(f"{kind} {name}: file {item['file']} does not exist")
    return f"{count} files and folders {COMPOSE} references exist (build, mounts, data file)", problems


def check_variables(p: Project):
    known = config_variables(p)
    problems, seen = [], 0
    for name, service in p.services.items():
        for var in environment(service):
            if var.startswith("PENSTOCK_"):
                seen += 1
                if var not in known:
                    problems.append(f"service {name}: {var} is not a penstock setting{did_you_mean(var, known)}")
    for rel in (DOCKERFILE, HEALTHCHECK_SCRIPT):
        for var in sorted(set(re.findall(r"\bPENSTOCK_[A-Z0-9_]+", p.texts.get(rel, "")))):
            seen += 1
            if var not in known:
                problems.append(f"{rel}: {var} is not a penstock setting{did_you_mean(var, known)}")
    return f"{seen} PENSTOCK_* variables are config keys ({CONFIG_RS} KEYS) or known extras", problems


def check_depends_on(p: Project):
    services = p.services
    problems, edges = [], {}
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"service {name}: depends_on {deps} has no condition; use `{{name: {{condition: service_healthy}}}}`")
            deps = {d: {} for d in deps}
        edges[name] = list(deps)
        for target, spec in deps.items():
            condition = spec.get("condition") if isinstance(spec, dict) else None
            if target not in services:
                problems.append(f"service {name}: depends on {target!r}, which is not a service")
                continue
            if condition is None:
                problems.append(f"service {name}: depends on {target} without a condition")
            elif condition == "service_healthy" and not healthcheck_enabled(services[target]):
                problems.append(f"service {name}: waits for {target} to be healthy, but {target} has no health check")
    # A cycle never starts.
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]):
        state[node] = 1
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                problems.append(f"dependency cycle: {' -> '.join(path + [node, nxt])}")
            elif nxt in edges and not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for node in edges:
        if not state.get(node):
            visit(node, [])
    count = sum(len(v) for v in edges.values())
    return f"{count} depends_on entries name services, each with a condition; no cycle", problems


def check_healthchecks(p: Project):
    services = p.services
    done = one_shots(services)
    problems, count = [], 0
    for name, service in services.items():
        if name in done:
            continue
        count += 1
        if not healthcheck_enabled(service):
            problems.append(f"service {name}: long-running but has no health check")
            continue
        if is_penstock(p, service):
            test = service["healthcheck"]["test"]
            words = test if isinstance(test, list) else str(test).split()
            port = served_port(service)
            if "penstock-healthcheck" not in " ".join(words):
                problems.append(f"service {name}: health check should call penstock-healthcheck (the image has no curl)")
            elif port is None:
                problems.append(f"service {name}: checks health but sets none of PENSTOCK_HEALTH_ADDR, PENSTOCK_METRICS_ADDR, PENSTOCK_API_ADDR")
            else:
                args = words[words.index("penstock-healthcheck") + 1 :] if "penstock-healthcheck" in words else []
                checked = port_of(args[0]) if args else port
                if checked != port:
                    problems.append(f"service {name}: health check probes port {checked}, but the service serves /health on {port}")
    return f"{count} long-running services have health checks ({len(done)} one-shots: {', '.join(sorted(done))})", problems


def check_scaling(p: Project):
    service = p.services.get("database")
    if service is None:
        return "the database service scales", ["there is no `database` service (the database consumer role)"]
    problems = []
    if "container_name" in service:
        problems.append(f"service database: container_name {service['container_name']!r} prevents --scale database=N")
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            fixed = port.get("published") not in (None, "")
        else:
            fixed = ":" in str(port).split("/")[0]
        if fixed:
            problems.append(f"service database: fixed host port {port!r} prevents --scale database=N (replicas would collide)")
    if service.get("hostname"):
        problems.append("service database: a fixed hostname makes every replica claim the same name")
    return "service database has no container_name and no fixed host port (scales with --scale)", problems


def check_dockerfile(p: Project):
    text = p.texts.get(DOCKERFILE)
    if text is None:
        raise Problem(f"{DOCKERFILE} is missing")
    instructions = dockerfile_instructions(text)
    problems = []
    stages: list[list[tuple[str, str]]] = []
    for word, args in instructions:
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, args))
    if len(stages) < 2:
        problems.append(f"{DOCKERFILE}: {len(stages)} FROM; expected a multi-stage build (builder, runtime)")
    if not stages:
        return "Dockerfile", problems
    final = stages[-1]
    base = final[0][1].split()[0]
    if base.startswith("rust:"):
        problems.append(f"{DOCKERFILE}: the runtime stage is based on {base}; use a slim runtime image")
    builder_runs = " ".join(a for stage in stages[:-1] for w, a in stage if w == "RUN")
    if not all(flag in builder_runs for flag in ("cargo build", "--release", "-p penstock", "--locked")):
        problems.append(f"{DOCKERFILE}: the builder should run `cargo build --release -p penstock --locked`")
    users = [a for w, a in final if w == "USER"]
    if not users:
        problems.append(f"{DOCKERFILE}: the runtime stage has no USER: it would run as root")
    elif users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"{DOCKERFILE}: USER {users[-1]} runs penstock as root; use the unprivileged user (uid 10001)")
    entrypoints = [a for w, a in final if w == "ENTRYPOINT"]
    try:
        entrypoint = json.loads(entrypoints[-1]) if entrypoints else None
    except json.JSONDecodeError:
        entrypoint = entrypoints[-1]
    if entrypoint != ["penstock"]:
        problems.append(f'{DOCKERFILE}: ENTRYPOINT is {entrypoint!r}; expected ["penstock"] (exec form, so penstock gets SIGTERM)')
    exposed = {port.split("/")[0] for w, a in final if w == "EXPOSE" for port in a.split()}
    for port in ("8080", "9100"):
        if port not in exposed:
            problems.append(f"{DOCKERFILE}: does not EXPOSE {port}")
    env = " ".join(a for w, a in final if w == "ENV")
    config = re.search(r"PENSTOCK_CONFIG[= ](\S+)", env)
    copies = [a.split() for w, a in final if w in ("COPY", "ADD")]
    if not config:
        problems.append(f"{DOCKERFILE}: the runtime stage does not set PENSTOCK_CONFIG")
    elif not any(c[-1].rstrip("/") == str(Path(config.group(1)).parent) and "config/" in c for c in copies):
        problems.append(f"{DOCKERFILE}: PENSTOCK_CONFIG={config.group(1)}, but config/ is not copied to {Path(config.group(1)).parent}/")
    if not any("--from=" in " ".join(c) and c[-1] == "/usr/local/bin/penstock" for c in copies):
        problems.append(f"{DOCKERFILE}: the binary is not copied from the builder to /usr/local/bin/penstock")
    # The build context: what COPY names and what cargo reads must be in it.
    patterns = dockerignore_patterns(p.texts.get(".dockerignore", ""))
    sources = [c for w, a in instructions if w in ("COPY", "ADD") and "--from=" not in a for c in [a.split()]]
    for words in sources:
        for source in [w for w in words[:-1] if not w.startswith("--")]:
            path = (p.root / source).resolve()
            rel = path.relative_to(p.root).as_posix() if path != p.root else "."
            if source != "." and not p.exists(path):
                problems.append(f"{DOCKERFILE}: COPY {source}: not in the build context (the repository root)")
            elif rel != "." and dockerignored(rel, patterns):
                problems.append(f"{DOCKERFILE}: COPY {source}: excluded by .dockerignore")
    for rel in build_inputs(p):
        if dockerignored(rel, patterns):
            problems.append(f".dockerignore excludes {rel}, which `cargo build` reads")
    return f"{DOCKERFILE}: {len(stages)} stages, USER {users[-1] if users else '-'}, ENTRYPOINT {entrypoint}, build context complete", problems


def check_prometheus(p: Project):
    config = p.get(PROMETHEUS)
    services = p.services
    problems, scraped = [], {}
    for job in config.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, _, port = target.rpartition(":")
                if host in ("localhost", "127.0.0.1"):
                    continue
                if host not in services:
                    problems.append(f"{PROMETHEUS}: job {job.get('job_name')}: target {target}: {host!r} is not a compose service")
                    continue
                scraped[host] = port
        for dns in job.get("dns_sd_configs") or []:
            if dns.get("type", "SRV") != "A":
                problems.append(f"{PROMETHEUS}: job {job.get('job_name')}: dns_sd_configs type {dns.get('type')}; Docker's DNS answers A records")
            for host in dns.get("names") or []:
                if host not in services:
                    problems.append(f"{PROMETHEUS}: job {job.get('job_name')}: DNS name {host!r} is not a compose service")
                    continue
                scraped[host] = str(dns.get("port", ""))
    done = one_shots(services)
    for name, service in services.items():
        if not is_penstock(p, service) or name in done:
            continue
        port = metrics_port(service)
        if name not in scraped:
            problems.append(f"{PROMETHEUS}: the {name} role is not scraped")
        elif port and scraped[name] != port:
            problems.append(f"{PROMETHEUS}: scrapes {name} on port {scraped[name]}, but it serves /metrics on {port}")
        elif not port:
            problems.append(f"service {name}: scraped, but sets neither PENSTOCK_METRICS_ADDR nor PENSTOCK_API_ADDR")
    if "database" in scraped and not any(
        "database" in (dns.get("names") or []) for job in config.get("scrape_configs") or [] for dns in job.get("dns_sd_configs") or []
    ):
        problems.append(f"{PROMETHEUS}: scrapes database statically; use dns_sd_configs so every replica is scraped")
    return f"{PROMETHEUS}: {len(scraped)} services scraped on their metrics ports, database by DNS", problems


def check_grafana(p: Project):
    series = exported_series(p)
    problems = []
    datasources, providers, dashboards = {}, [], {}
    for rel, parsed in p.parsed.items():
        if rel.startswith("docker/grafana/provisioning/datasources/"):
            for ds in (parsed or {}).get("datasources") or []:
                datasources[ds.get("uid")] = ds
        elif rel.startswith("docker/grafana/provisioning/dashboards/"):
            providers += (parsed or {}).get("providers") or []
        elif rel.startswith("docker/grafana/") and rel.endswith(".json"):
            dashboards[rel] = parsed
    if not datasources:
        problems.append("no Grafana datasource is provisioned (docker/grafana/provisioning/datasources/*.yml)")
    for uid, ds in datasources.items():
        host = urlsplit(ds.get("url", "")).hostname
        if ds.get("type") == "prometheus" and host not in p.services:
            problems.append(f"Grafana datasource {uid}: url {ds.get('url')} names no compose service")
    grafana = p.services.get("grafana")
    if grafana is None:
        problems.append("there is no grafana service")
    mounts = bind_mounts(p, grafana or {})
    for provider in providers:
        path = (provider.get("options") or {}).get("path", "")
        hosts = [src for src, dst in mounts if path == dst.rstrip("/") or path.startswith(dst.rstrip("/") + "/")]
        if not hosts:
            problems.append(f"Grafana dashboard provider {provider.get('name')}: {path} is not mounted into the grafana service")
        elif not any(p.exists(h) and list(h.glob("*.json")) for h in hosts):
            problems.append(f"Grafana dashboard provider {provider.get('name')}: {path} holds no dashboard JSON")
    home = environment(grafana or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home and not any(home.startswith(dst.rstrip("/") + "/") and p.exists(src / home[len(dst.rstrip("/")) + 1 :]) for src, dst in mounts):
        problems.append(f"Grafana home dashboard {home} is not a mounted file")
    if not dashboards:
        problems.append("no dashboard JSON under docker/grafana/dashboards/")
    queried = set()
    for rel, dashboard in dashboards.items():
        if not isinstance(dashboard, dict) or not dashboard.get("panels"):
            problems.append(f"{rel}: not a dashboard (no panels)")
            continue
        for uid in sorted(dashboard_uids(dashboard) - set(datasources)):
            problems.append(f"{rel}: datasource uid {uid!r} is not provisioned")
        exprs = dashboard_exprs(dashboard)
        if not exprs:
            problems.append(f"{rel}: queries nothing")
        for expr in exprs:
            names = promql_metrics(expr)
            if not names:
                problems.append(f"{rel}: {expr!r} selects no metric")
            for name in names:
                queried.add(name)
                if name not in series and name not in PROMETHEUS_SERIES:
                    hint = f" (did you mean {name}_bucket?)" if name + "_bucket" in series else ""
                    problems.append(f"{rel}: {expr!r} uses {name}, which penstock does not export{hint}")
    metrics = {series[n] for n in queried if n in series}
    return f"{len(dashboards)} dashboard(s) query {len(metrics)} of penstock's {len(set(series.values()))} metrics, all exported", problems


def check_wiring(p: Project):
    """S3 bucket, credentials and the MinIO → RabbitMQ → scanner event route agree."""
    services = p.services
    problems = []
    minio = services.get("minio", {})
    init = services.get("minio-init", {})
    minio_env = environment(minio)
    # penstock's URLs name services.
    for name, service in services.items():
        if not is_penstock(p, service):
            continue
        env = environment(service)
        for key in ("PENSTOCK_DATABASE_URL", "PENSTOCK_AMQP_URL", "AWS_ENDPOINT_URL"):
            if key not in env:
                continue
            hosts = amqp_hosts(env[key]) if key == "PENSTOCK_AMQP_URL" else [urlsplit(env[key]).hostname]
            for host in hosts or [None]:
                if host not in services:
                    problems.append(f"service {name}: {key} names host {host!r}, which is not a service")
        storage = env.get("PENSTOCK_STORAGE_URL", "")
        if storage.startswith("s3://"):
            bucket = storage[5:].split("/")[0]
            made = re.findall(r"mc mb (?:--?[\w-]+ )*\w+/([\w.-]+)", shell_text(init))
            if bucket not in made:
                problems.append(f"service {name}: PENSTOCK_STORAGE_URL bucket {bucket!r}, but minio-init creates {made or 'no bucket'}")
            if (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) != (minio_env.get("MINIO_ROOT_USER"), minio_env.get("MINIO_ROOT_PASSWORD")):
                problems.append(f"service {name}: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY differ from MinIO's root user")
    # The seeded object lands under a dataset's key prefix.
    prefixes = []
    for spec in sorted((p.root / "config/datasets").glob("*.toml")):
        prefixes.append(tomllib.loads(spec.read_text(encoding="utf-8")).get("key_prefix", ""))
    for key in re.findall(r"mc cp \S+ \w+/[\w.-]+/(\S+)", shell_text(init)):
        if not any(key.startswith(prefix) for prefix in prefixes):
            problems.append(f"minio-init uploads {key}, which is under no dataset's key_prefix ({', '.join(prefixes)})")
    # MinIO's AMQP target → the ARN minio-init attaches → RabbitMQ's route → the scanner's queue.
    targets = {k[len("MINIO_NOTIFY_AMQP_ENABLE_") :] for k, v in minio_env.items() if k.startswith("MINIO_NOTIFY_AMQP_ENABLE_") and v == "on"}
    arns = set(re.findall(r"arn:minio:sqs:[\w-]*:(\w+):amqp", shell_text(init)))
    if not targets:
        problems.append("minio: no MINIO_NOTIFY_AMQP_ENABLE_<ID>=on")
    if arns != targets:
        problems.append(f"minio-init attaches AMQP target(s) {sorted(arns)}, minio enables {sorted(targets)}")
    definitions = p.get(RABBITMQ_DEFINITIONS)
    scanner_queue = environment(services.get("scanner", {})).get("PENSTOCK_S3_EVENTS_QUEUE")
    for target in sorted(targets):
        setting = lambda name: minio_env.get(f"MINIO_NOTIFY_AMQP_{name}_{target}")  # noqa: E731
        url = urlsplit(setting("URL") or "")
        if url.hostname not in services:
            problems.append(f"minio: MINIO_NOTIFY_AMQP_URL_{target} names host {url.hostname!r}, which is not a service")
        if url.username and url.username not in {u.get("name") for u in definitions.get("users", [])}:
            problems.append(f"minio: AMQP user {url.username!r} is not declared in {RABBITMQ_DEFINITIONS} (a boot-time import skips the default user)")
        exchange = next((e for e in definitions.get("exchanges", []) if e.get("name") == setting("EXCHANGE")), None)
        if exchange is None:
            problems.append(f"minio publishes to exchange {setting('EXCHANGE')!r}, which {RABBITMQ_DEFINITIONS} does not declare")
        elif exchange.get("type") != (setting("EXCHANGE_TYPE") or "direct") or exchange.get("durable") != (setting("DURABLE") == "on"):
            problems.append(f"exchange {exchange.get('name')}: type/durable differ between minio's settings and {RABBITMQ_DEFINITIONS} (RabbitMQ would refuse MinIO's declaration)")
        routes = [
            b.get("destination")
            for b in definitions.get("bindings", [])
            if b.get("source") == setting("EXCHANGE") and b.get("routing_key") == setting("ROUTING_KEY") and b.get("destination_type") == "queue"
        ]
        if not routes:
            problems.append(f"no binding routes exchange {setting('EXCHANGE')!r} key {setting('ROUTING_KEY')!r} to a queue in {RABBITMQ_DEFINITIONS}")
        elif scanner_queue not in routes:
            problems.append(f"scanner: PENSTOCK_S3_EVENTS_QUEUE={scanner_queue!r}, but MinIO's events are routed to {routes}")
        declared = {q.get("name") for q in definitions.get("queues", [])}
        for queue in routes:
            if queue not in declared:
                problems.append(f"queue {queue!r} is bound but not declared in {RABBITMQ_DEFINITIONS}")
    mounted = [dst for _, dst in bind_mounts(p, services.get("rabbitmq", {}))]
    if "/etc/rabbitmq/definitions.json" not in mounted or not any(d.startswith("/etc/rabbitmq/conf.d/") for d in mounted):
        problems.append("rabbitmq: definitions.json and the conf.d file that loads it are not both mounted")
    return "S3 bucket and credentials, and MinIO → RabbitMQ → scanner event route agree", problems


# Images known to exist at these tags (checked against each project's registry and release
# notes when pinned). minio/minio and minio/mc left Docker Hub in September 2026: MinIO's
# release tags are on quay.io. RabbitMQ before 4.0 is out of community support.
KNOWN_IMAGES = {
    "postgres:15",
    "rabbitmq:4.1-management",
    "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z",
    "prom/prometheus:v3.5.0",
    "grafana/grafana:11.6.0",
}
GONE = {
    "minio/minio": "removed from Docker Hub; use quay.io/minio/minio at a RELEASE tag",
    "minio/mc": "removed from Docker Hub; use quay.io/minio/mc at a RELEASE tag",
}


def check_images(p: Project):
    problems, pulled = [], []
    for name, service in p.services.items():
        image = service.get("image")
        if not image or "build" in service or is_penstock(p, service):
            continue
        pulled.append(image)
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        repo = repo.removeprefix("docker.io/").removeprefix("library/")
        if repo in GONE:
            problems.append(f"service {name}: image {image} is {GONE[repo]}")
        elif not tag or tag == "latest":
            problems.append(f"service {name}: image {image} is not pinned to a tag")
        elif repo == "rabbitmq" and not tag.split(".")[0].isdigit():
            problems.append(f"service {name}: image {image}: pin a numbered RabbitMQ tag (4.x)")
        elif repo == "rabbitmq" and int(tag.split(".")[0]) < 4:
            problems.append(f"service {name}: image {image}: RabbitMQ {tag.split('-')[0]} is out of community support; use 4.x")
        elif image not in KNOWN_IMAGES:
            problems.append(f"service {name}: image {image} is not in the list of tags known to exist (KNOWN_IMAGES); check the registry, then add it")
    return f"{len(pulled)} pulled images pinned to tags known to exist", problems


def _test_words(service) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test") or []
    return [str(w) for w in test] if isinstance(test, list) else str(test).split()


def check_readiness(p: Project):
    """Health checks that mean "accepts connections", and mounts that hide nothing."""
    problems = []
    postgres = p.services.get("postgres") or {}
    words = _test_words(postgres)
    if "pg_isready" in words and "-h" not in words:
        problems.append(
            "service postgres: pg_isready without -h answers through the Unix socket, which the image's "
            "init serves before TCP: add -h 127.0.0.1"
        )
    for name, node in rabbitmq_nodes(p.services).items():
        words = _test_words(node)
        if "rabbitmq-diagnostics" in words and "check_port_connectivity" not in words:
            problems.append(
                f"service {name}: `rabbitmq-diagnostics ping` passes before port 5672 accepts connections: "
                "use `rabbitmq-diagnostics -q check_port_connectivity`"
            )
    for volume in (p.services.get("grafana") or {}).get("volumes") or []:
        target = str(volume).split(":")[1] if ":" in str(volume) else ""
        if target.rstrip("/") == "/etc/grafana/provisioning":
            problems.append(
                "service grafana: mounting all of /etc/grafana/provisioning hides the image's own folders "
                "(errors at every start): mount provisioning/dashboards and provisioning/datasources only"
            )
    return "health checks of postgres and every RabbitMQ node mean \"accepts connections\"; Grafana mounts only its folders", problems


def check_restart(p: Project):
    """Long-running services come back by themselves; a penstock one-shot retries a failed run
    a bounded number of times; no one-shot is started again after it succeeds."""
    services = p.services
    done = one_shots(services)
    problems = []
    for name, service in services.items():
        mode, retries = restart_policy(service)
        shown = str(service.get("restart") or "no") if "restart_policy" not in (service.get("deploy") or {}) else f"deploy.restart_policy {mode}"
        if name not in done:
            if mode not in ("always", "unless-stopped"):
                problems.append(f"service {name}: long-running with restart: {shown}: it stays down after a crash or a restart of Docker; use unless-stopped")
        elif mode in ("always", "unless-stopped"):
            problems.append(f"service {name}: a one-shot with restart: {shown} is started again after it succeeds, so compose never sees it complete")
        elif is_penstock(p, service):
            if mode != "on-failure":
                problems.append(
                    f"service {name}: restart: {shown}: a failed run (e.g. PostgreSQL still not up after startup_wait) "
                    f"is not retried and stops the whole start; use on-failure:N"
                )
            elif not retries:
                problems.append(f"service {name}: restart: {shown} retries without bound; give a maximum, e.g. on-failure:5")
            elif retries > MAX_ONE_SHOT_RETRIES:
                problems.append(f"service {name}: restart: {shown}: more than {MAX_ONE_SHOT_RETRIES} retries hide a failure that will not go away")
    long_running = len(services) - len(done & set(services))
    return f"{long_running} long-running services restart unless stopped; penstock one-shots retry a bounded number of times", problems


def check_host_ports(p: Project):
    """Every published port listens on 127.0.0.1 only: the credentials here are a demo's."""
    problems, count = [], 0
    for name, service in p.services.items():
        for port in service.get("ports") or []:
            count += 1
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            if host_ip != "127.0.0.1":
                problems.append(f"service {name}: port {port!r} is published on every interface; bind it to 127.0.0.1 (\"127.0.0.1:HOST:CONTAINER\")")
    return f"{count} host ports, all bound to 127.0.0.1", problems


def check_cluster(p: Project):
    """The `cluster` profile: more RabbitMQ nodes that join the default one, which runs alone
    without the profile; and a fleet pointed at every node."""
    services = p.services
    nodes = rabbitmq_nodes(services)
    default = nodes.get(DEFAULT_RABBITMQ)
    if default is None:
        return "RabbitMQ cluster profile", [f"there is no `{DEFAULT_RABBITMQ}` service running RabbitMQ (the default node)"]
    problems = []
    extra = {n: s for n, s in nodes.items() if n != DEFAULT_RABBITMQ}
    if default.get("profiles"):
        problems.append(f"service {DEFAULT_RABBITMQ}: in profile(s) {default['profiles']}; the default node must start without a profile")
    if not extra:
        problems.append(f"no RabbitMQ node in profile {CLUSTER_PROFILE!r}: `--profile {CLUSTER_PROFILE}` would start no cluster")
    elif len(nodes) % 2 == 0:
        problems.append(f"{len(nodes)} RabbitMQ nodes with the {CLUSTER_PROFILE} profile: use an odd number (3), or a quorum queue stops when one node does")
    # Node names (rabbit@<hostname>) and data volumes: one each, stable.
    names: dict[str, str] = {}
    volumes: dict[str, str] = {}
    for name, node in nodes.items():
        host = node.get("hostname")
        if not host:
            problems.append(f"service {name}: no hostname: its node name rabbit@<hostname> would change with every new container (and its data and cluster membership with it)")
        elif f"rabbit@{host}" in names:
            problems.append(f"service {name}: hostname {host!r} is {names['rabbit@' + host]}'s too; every node needs its own name")
        else:
            names[f"rabbit@{host}"] = name
        data = [v for v, target in named_volumes(node) if target.rstrip("/") == RABBITMQ_DATA]
        if not data:
            problems.append(f"service {name}: no named volume at {RABBITMQ_DATA}: the node would lose its data and cluster membership with its container")
        for volume in data:
            if volume in volumes:
                problems.append(f"service {name}: shares volume {volume} with {volumes[volume]}; every node needs its own data folder")
            volumes.setdefault(volume, name)
    # One Erlang cookie, from a file, for every node.
    cookies = {}
    for name, node in nodes.items():
        if "RABBITMQ_ERLANG_COOKIE" in environment(node):
            problems.append(f"service {name}: RABBITMQ_ERLANG_COOKIE is deprecated; install the cookie file the other nodes use (a secret)")
        cookie = cookie_source(p, node)
        if cookie is None:
            problems.append(
                f"service {name}: installs no shared Erlang cookie (a secret its entrypoint copies to {ERLANG_COOKIE}): "
                "with a cookie of its own, no other node can cluster with it"
            )
        else:
            cookies[name] = cookie
    if len(set(cookies.values())) > 1:
        problems.append(f"the RabbitMQ nodes use different Erlang cookies ({', '.join(f'{n}: {c}' for n, c in cookies.items())}): they cannot cluster")
    # Peer discovery: the extra nodes list the default node and themselves; the default node has none.
    seed = f"rabbit@{default.get('hostname') or DEFAULT_RABBITMQ}"
    if any(key.startswith("cluster_formation.") for key in rabbitmq_config(p, default)):
        problems.append(f"service {DEFAULT_RABBITMQ}: has cluster_formation settings (peer discovery); the default node must have none, to run alone without the {CLUSTER_PROFILE} profile")
    for name, node in extra.items():
        if node.get("image") != default.get("image"):
            problems.append(f"service {name}: image {node.get('image')}, but {DEFAULT_RABBITMQ} runs {default.get('image')}: every node of a cluster runs the same RabbitMQ")
        profiles = node.get("profiles") or []
        if profiles != [CLUSTER_PROFILE]:
            problems.append(f"service {name}: profiles {profiles or 'none'}; a cluster node starts with `--profile {CLUSTER_PROFILE}` and only then (profiles: [{CLUSTER_PROFILE}])")
        deps = node.get("depends_on")
        if not isinstance(deps, dict) or (deps.get(DEFAULT_RABBITMQ) or {}).get("condition") != "service_healthy":
            problems.append(
                f"service {name}: does not wait for {DEFAULT_RABBITMQ} to be healthy: on its first start, peer discovery "
                "could find only the other new node and form a cluster of their own"
            )
        conf = rabbitmq_config(p, node)
        backend = conf.get("cluster_formation.peer_discovery_backend")
        listed = [v for k, v in sorted(conf.items()) if re.fullmatch(r"cluster_formation\.classic_config\.nodes\.\d+", k)]
        if backend not in ("classic_config", "rabbit_peer_discovery_classic_config"):
            problems.append(
                f"service {name}: no classic config peer discovery (cluster_formation.peer_discovery_backend = classic_config "
                f"in a mounted conf.d file): it would not join {DEFAULT_RABBITMQ}"
            )
            continue
        if seed not in listed:
            problems.append(f"service {name}: peer discovery lists {listed}, not the default node {seed}: it would not join it")
        own = f"rabbit@{node.get('hostname')}"
        if own not in listed:
            problems.append(f"service {name}: peer discovery lists {listed}, not {own} itself: RabbitMQ (3.13 on) ignores a list without the booting node")
        for listed_node in listed:
            if listed_node not in names:
                problems.append(f"service {name}: peer discovery lists {listed_node}, which is no RabbitMQ node of {COMPOSE}")
    # Queues declared before the others joined grow onto them.
    for name, node in nodes.items():
        conf = rabbitmq_config(p, node)
        key = "quorum_queue.continuous_membership_reconciliation"
        if conf.get(f"{key}.enabled") != "true":
            problems.append(
                f"service {name}: continuous membership reconciliation is off ({key}.enabled = true in a mounted conf.d file): "
                "a quorum queue declared before the other nodes joined keeps a single replica"
            )
        elif conf.get(f"{key}.target_group_size") != str(len(nodes)):
            problems.append(f"service {name}: {key}.target_group_size is {conf.get(f'{key}.target_group_size')}, not {len(nodes)} (every node)")
    # The fleet is pointed at every node; the names of the profile's nodes do not resolve without it.
    pointed = 0
    for name, service in services.items():
        if not is_penstock(p, service):
            continue
        pointed += 1
        missing = [n for n in nodes if n not in amqp_hosts(environment(service).get("PENSTOCK_AMQP_URL", ""))]
        if missing:
            problems.append(f"service {name}: PENSTOCK_AMQP_URL does not name {', '.join(missing)}: it would not fail over to every RabbitMQ node")
    return (
        f"{len(nodes)} RabbitMQ nodes: {', '.join(extra) or 'none'} in profile {CLUSTER_PROFILE} join {seed} "
        f"(same image and cookie, own volumes); {pointed} penstock services name every node",
        problems,
    )


CHECKS = [
    ("files parse", check_parse),
    ("compose schema", check_schema),
    ("referenced files", check_files),
    ("PENSTOCK_* variables", check_variables),
    ("depends_on", check_depends_on),
    ("health checks", check_healthchecks),
    ("images", check_images),
    ("readiness", check_readiness),
    ("restart policies", check_restart),
    ("host ports", check_host_ports),
    ("RabbitMQ cluster", check_cluster),
    ("scaling", check_scaling),
    ("Dockerfile", check_dockerfile),
    ("Prometheus targets", check_prometheus),
    ("Grafana", check_grafana),
    ("S3 and AMQP wiring", check_wiring),
]


def run_checks(project: Project) -> dict[str, list[str]]:
    """Problems by check name (empty list: passed), with the line each check prints."""
    results = {}
    for name, check in CHECKS:
        try:
            detail, problems = check(project)
        except Problem as e:
            detail, problems = name, [str(e)]
        except (KeyError, TypeError, AttributeError, ValueError, StopIteration) as e:
            detail, problems = name, [f"unexpected shape: {type(e).__name__}: {e}"]
        results[name] = (detail, problems)
    return results


def report(results) -> int:
    failed = 0
    for name, (detail, problems) in results.items():
        if problems:
            failed += 1
            print(f"FAIL  {name}: {problems[0]}")
            for problem in problems[1:]:
                print(f"      {name}: {problem}")
        else:
            print(f"ok    {name}: {detail}")
    if failed:
        print(f"check-docker: {failed} of {len(results)} checks failed", file=sys.stderr)
        return 1
    print(f"check-docker: {len(results)} checks passed")
    return 0


# ---- self-test: each mutation must be caught by the named check ---------------------------------


def _set_env(service: str, key: str, value: str):
    def mutate(p: Project):
        env = p.compose["services"][service].setdefault("environment", {})
        env[key] = value

    return mutate


def _replace_text(rel: str, old: str, new: str):
    def mutate(p: Project):
        assert old in p.texts[rel], f"self-test is stale: {old!r} is not in {rel}"
        p.texts[rel] = p.texts[rel].replace(old, new, 1)

    return mutate


def _svc(service: str, fn):
    def mutate(p: Project):
        fn(p.compose["services"][service])

    return mutate


def _dashboard_expr(old: str, new: str):
    """Changes the first panel query that uses `old` (not a description that names it)."""

    def mutate(p: Project):
        rel = "docker/grafana/dashboards/penstock.json"
        for panel in p.parsed[rel]["panels"]:
            for target in panel.get("targets", []):
                if old in target.get("expr", ""):
                    target["expr"] = target["expr"].replace(old, new)
                    return
        raise AssertionError(f"self-test is stale: no query in {rel} uses {old!r}")

    return mutate


def _broken_json(p: Project):
    # Reparse with a truncated file, as a bad edit would leave it.
    rel = "docker/grafana/dashboards/penstock.json"
    broken = load(p.root, {rel: p.texts[rel][: len(p.texts[rel]) // 2]})
    p.parse_errors, p.parsed = broken.parse_errors, {k: v for k, v in p.parsed.items() if k != rel}


def _prometheus_targets(fn):
    def mutate(p: Project):
        fn(p.parsed[PROMETHEUS]["scrape_configs"])

    return mutate


def _remove_target(jobs, target):
    for job in jobs:
        for static in job.get("static_configs") or []:
            static["targets"] = [t for t in static["targets"] if t != target]


MUTATIONS = [
    ("an unknown PENSTOCK_ variable", _set_env("scanner", "PENSTOCK_SCAN_INTERVALL", "1s"), "PENSTOCK_* variables", "PENSTOCK_SCAN_INTERVALL"),
    ("a PENSTOCK_ variable in the Dockerfile that is no setting", _replace_text(DOCKERFILE, "PENSTOCK_LOG_FORMAT=json", "PENSTOCK_LOGFORMAT=json"), "PENSTOCK_* variables", "PENSTOCK_LOGFORMAT"),
    ("the eGRID data file missing", lambda p: p.missing.add("data/egrid/egrid2023_gen.csv"), "referenced files", "egrid2023_gen.csv"),
    ("a bind-mounted file missing", lambda p: p.missing.add(PROMETHEUS), "referenced files", "prometheus.yml"),
    ("the Dockerfile missing", lambda p: p.missing.add(DOCKERFILE), "referenced files", "Dockerfile"),
    ("a misspelt service key", _svc("chunker", lambda s: s.update(healthchek=s.pop("healthcheck"))), "compose schema", "healthchek"),
    ("a top-level version key", lambda p: p.compose.update(version="3.9"), "compose schema", "version"),
    ("depends_on an unknown service", _svc("chunker", lambda s: s["depends_on"].update(rabbit={"condition": "service_healthy"})), "depends_on", "'rabbit'"),
    ("depends_on without a condition", _svc("api", lambda s: s.update(depends_on=["migrate", "rabbitmq"])), "depends_on", "no condition"),
    ("waiting for health of a service without a health check", _svc("postgres", lambda s: s.pop("healthcheck")), "depends_on", "postgres has no health check"),
    ("a long-running role without a health check", _svc("chunker", lambda s: s.pop("healthcheck")), "health checks", "chunker"),
    ("a health check on the wrong port", _svc("api", lambda s: s.update(healthcheck={**s["healthcheck"], "test": ["CMD", "penstock-healthcheck", "9100"]})), "health checks", "port 9100"),
    ("container_name on the scaled database service", _svc("database", lambda s: s.update(container_name="penstock-database")), "scaling", "container_name"),
    ("a fixed host port on the scaled database service", _svc("database", lambda s: s.update(ports=["9100:9100"])), "scaling", "9100:9100"),
    ("the runtime running as root", _replace_text(DOCKERFILE, "USER 10001:10001", "USER root"), "Dockerfile", "root"),
    ("a single-stage Dockerfile", _replace_text(DOCKERFILE, "FROM debian:bookworm-slim", "# (no runtime stage)"), "Dockerfile", "FROM"),
    ("a shell-form ENTRYPOINT", _replace_text(DOCKERFILE, 'ENTRYPOINT ["penstock"]', "ENTRYPOINT penstock"), "Dockerfile", "ENTRYPOINT"),
    (".dockerignore dropping config/", lambda p: p.texts.update({".dockerignore": p.texts[".dockerignore"] + "\nconfig/\n"}), "Dockerfile", "config"),
    (".dockerignore dropping .sqlx/", lambda p: p.texts.update({".dockerignore": p.texts[".dockerignore"] + "\n.sqlx/\n"}), "Dockerfile", ".sqlx"),
    ("Prometheus scraping a service that does not exist", _prometheus_targets(lambda jobs: jobs[0]["static_configs"][0]["targets"].append("loader:9100")), "Prometheus targets", "'loader'"),
    ("Prometheus missing a role", _prometheus_targets(lambda jobs: _remove_target(jobs, "chunker:9100")), "Prometheus targets", "chunker"),
    ("a dashboard querying a misspelt metric", _dashboard_expr("penstock_loader_rows_loaded_total", "penstock_loader_rows_loadd_total"), "Grafana", "penstock_loader_rows_loadd_total"),
    ("a dashboard querying a histogram without _bucket", _dashboard_expr("penstock_api_request_duration_seconds_bucket", "penstock_api_request_duration_seconds"), "Grafana", "did you mean"),
    ("a dashboard that is not valid JSON", _broken_json, "files parse", "penstock.json"),
    ("penstock reading another bucket than minio-init creates", _set_env("database", "PENSTOCK_STORAGE_URL", "s3://inbox"), "S3 and AMQP wiring", "'inbox'"),
    ("MinIO publishing with a routing key nothing binds", _set_env("minio", "MINIO_NOTIFY_AMQP_ROUTING_KEY_PENSTOCK", "s3-events"), "S3 and AMQP wiring", "s3-events"),
    ("an image removed from Docker Hub", _svc("minio", lambda s: s.update(image="minio/minio:RELEASE.2025-09-07T16-13-09Z")), "images", "removed from Docker Hub"),
    ("an unpinned image", _svc("prometheus", lambda s: s.update(image="prom/prometheus:latest")), "images", "not pinned"),
    ("RabbitMQ out of support", _svc("rabbitmq", lambda s: s.update(image="rabbitmq:3.13-management")), "images", "out of community support"),
    ("a tag nobody checked", _svc("grafana", lambda s: s.update(image="grafana/grafana:11.6.99")), "images", "known to exist"),
    ("pg_isready through the socket", _svc("postgres", lambda s: s["healthcheck"].update(test=["CMD", "pg_isready", "-U", "postgres", "-d", "penstock"])), "readiness", "-h 127.0.0.1"),
    ("rabbitmq-diagnostics ping", _svc("rabbitmq", lambda s: s["healthcheck"].update(test=["CMD", "rabbitmq-diagnostics", "-q", "ping"])), "readiness", "check_port_connectivity"),
    ("Grafana's whole provisioning folder mounted", _svc("grafana", lambda s: s["volumes"].append("./grafana/provisioning:/etc/grafana/provisioning:ro")), "readiness", "hides the image's own folders"),
    ("the scanner consuming another queue than the events go to", _set_env("scanner", "PENSTOCK_S3_EVENTS_QUEUE", "penstock.events"), "S3 and AMQP wiring", "penstock.events"),
    ("a cluster node's health check that is a ping", _svc("rabbitmq-3", lambda s: s["healthcheck"].update(test=["CMD", "rabbitmq-diagnostics", "-q", "ping"])), "readiness", "service rabbitmq-3"),
    ("migrate not retrying a failed run", _svc("migrate", lambda s: s.update(restart="no")), "restart policies", "service migrate"),
    ("migrate retrying without bound", _svc("migrate", lambda s: s.update(restart="on-failure")), "restart policies", "without bound"),
    ("a one-shot restarted after it succeeds", _svc("minio-init", lambda s: s.update(restart="always")), "restart policies", "never sees it complete"),
    ("a long-running role without a restart policy", _svc("chunker", lambda s: s.pop("restart")), "restart policies", "service chunker"),
    ("a host port on every interface", _svc("rabbitmq-2", lambda s: s.update(ports=["15673:15672"])), "host ports", "every interface"),
    ("a cluster node on another image", _svc("rabbitmq-2", lambda s: s.update(image="rabbitmq:4.0-management")), "RabbitMQ cluster", "the same RabbitMQ"),
    ("a cluster node outside the cluster profile", _svc("rabbitmq-3", lambda s: s.pop("profiles")), "RabbitMQ cluster", "--profile cluster"),
    ("a cluster node without a hostname", _svc("rabbitmq-3", lambda s: s.pop("hostname")), "RabbitMQ cluster", "no hostname"),
    ("two nodes on one data volume", _svc("rabbitmq-3", lambda s: s.update(volumes=[v.replace("rabbitmq-3-data", "rabbitmq-2-data") for v in s["volumes"]])), "RabbitMQ cluster", "shares volume rabbitmq-2-data"),
    ("a cluster node not waiting for the default node", _svc("rabbitmq-2", lambda s: s.pop("depends_on")), "RabbitMQ cluster", "to be healthy"),
    ("a cluster node without the shared cookie", _svc("rabbitmq-2", lambda s: s.pop("secrets")), "RabbitMQ cluster", "no shared Erlang cookie"),
    ("a cluster node with another cookie file", lambda p: (p.compose["secrets"].update({"other-cookie": {"file": "./rabbitmq/penstock.conf"}}), p.compose["services"]["rabbitmq-3"].update(secrets=[{"source": "other-cookie", "target": "erlang-cookie"}])), "RabbitMQ cluster", "different Erlang cookies"),
    ("the cookie in the deprecated variable", _set_env("rabbitmq-3", "RABBITMQ_ERLANG_COOKIE", "penstock-local-demo-erlang-cookie"), "RabbitMQ cluster", "RABBITMQ_ERLANG_COOKIE"),
    ("peer discovery without the default node", _replace_text(f"{RABBITMQ_CONF_DIR}/cluster.conf", "nodes.1 = rabbit@rabbitmq\n", "nodes.1 = rabbit@rabbit\n"), "RabbitMQ cluster", "not the default node rabbit@rabbitmq"),
    ("peer discovery on the default node", _svc("rabbitmq", lambda s: s["volumes"].append("./rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/40-cluster.conf:ro")), "RabbitMQ cluster", "to run alone"),
    ("an even number of RabbitMQ nodes", lambda p: p.compose["services"].pop("rabbitmq-3"), "RabbitMQ cluster", "odd number"),
    ("quorum queues not grown onto joining nodes", _replace_text(f"{RABBITMQ_CONF_DIR}/quorum.conf", "enabled = true", "enabled = false"), "RabbitMQ cluster", "reconciliation is off"),
    ("a role not pointed at every RabbitMQ node", _set_env("scanner", "PENSTOCK_AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f,amqp://guest:guest@rabbitmq-2:5672/%2f"), "RabbitMQ cluster", "does not name rabbitmq-3"),
]


def self_test(root: Path) -> int:
    baseline = load(root)
    results = run_checks(baseline)
    broken = [f"{n}: {problems[0]}" for n, (_, problems) in results.items() if problems]
    if broken:
        print("self-test FAIL: the unmodified files do not pass, so mutations prove nothing:", *broken, sep="\n  ")
        return 1
    failures = 0
    for description, mutate, check, needle in MUTATIONS:
        project = copy.deepcopy(baseline)
        try:
            mutate(project)
        except (AssertionError, KeyError) as e:
            print(f"self-test FAIL  {description}: cannot apply the mutation ({e})")
            failures += 1
            continue
        results = run_checks(project)
        problems = results[check][1]
        hit = next((pr for pr in problems if needle in pr), None)
        if hit:
            print(f"self-test ok    {description}: caught by {check}: {hit}")
        else:
            failures += 1
            print(f"self-test FAIL  {description}: {check} did not report it (reported: {problems or 'nothing'})")
    if failures:
        print(f"check-docker self-test: {failures} of {len(MUTATIONS)} mistakes were not caught", file=sys.stderr)
        return 1
    print(f"check-docker self-test: all {len(MUTATIONS)} mistakes caught")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="check that the checks catch injected mistakes")
    args = parser.parse_args()
    if args.self_test:
        return self_test(ROOT)
    return report(run_checks(load(ROOT)))


if __name__ == "__main__":
    sys.exit(main())
