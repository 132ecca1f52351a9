"""JupyterHub for one cvcourse course: students fetch and submit from JupyterLab's
Assignments tab, instructors and TAs grade in nbgrader's formgrader, run as a hub service.

Read by ``jupyterhub -f deploy/jupyterhub/jupyterhub_config.py``. Everything that differs
between hubs (paths, ports, the course id, who teaches, who studies) comes from a settings
file (JSON) named by the environment variable ``CVHUB_SETTINGS``; ``hubctl.py`` writes it
(``make hub`` for the local demo, the tests, the benchmark). README, "Running the course on
JupyterHub", says how a real server sets it up.

Several courses on one hub: one formgrader service, grader user, course folder, receipt
watcher and pair of groups per course (run this block once per course id, each service on
its own port); the exchange root is shared, each course in its own sub-folder. A student
in two courses is in both ``nbgrader-<course>`` groups and the Assignments tab lists both.

What it configures, and the pitfall each setting closes:

- Real system users, each server started as its owner (``LocalProcessSpawner``): nbgrader
  credits a submission to the OS user that made it, so servers sharing one uid would mix
  students up.
- Every server runs the course's student environment (``<venv>/bin/jupyterhub-singleuser``:
  the student distribution of cvcourse, JupyterLab, nbgrader's Assignments tab, ipywidgets),
  with that venv's ``bin`` first on PATH: nbgrader runs the ``alembic`` command when it creates
  a gradebook. The venv is built from a system-wide Python every user can read.
- The formgrader is a hub service named after the course, run by ``grader-<course>`` in the
  TA environment (the grader and ``cvgrade``) in the course folder. Only the JupyterHub group
  ``formgrade-<course>`` (instructors, TAs) may open it; ``nbgrader-<course>`` (students) may
  only discover it, which is what the Assignments tab needs.
- The exchange is one folder with the course id in its path (``Exchange.path_includes_course``),
  mode 1777; students' membership checks ask the hub (``JupyterHubAuthPlugin``): see
  ``nbgrader_config.py``.
- Receipts: ``cvgrade receipts --watch`` runs as a second managed service, as the grader
  user, and takes a receipt of each submission as it arrives (README, "Through a hub's
  exchange"): students can forge ``timestamp.txt`` (nbgrader #1104) and submit under another
  name (#1097); the receipt's time and uploader are the grader side's.
- JupyterHub >= 4.1 forbids framing any page (``frame-ancestors 'none'``), which leaves the
  formgrader panel blank (nbgrader #1870). Only the grader service allows being framed, by
  its own origin: ``grader_server_config.py``.
"""

import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub's config loader provides get_config)

settings_file = os.environ.get("CVHUB_SETTINGS")
if not settings_file:
    raise SystemExit(
        "CVHUB_SETTINGS is not set: it names the hub's settings file (deploy/jupyterhub/hubctl.py "
        "writes one; see README, 'Running the course on JupyterHub')"
    )
S = json.loads(Path(settings_file).read_text())

COURSE = S["course"]  # nbgrader's course id; also the formgrader service's name
GRADER_USER = f"grader-{COURSE}"
FORMGRADE_GROUP = f"formgrade-{COURSE}"  # instructors and TAs
STUDENT_GROUP = f"nbgrader-{COURSE}"  # students
VENV = S["venv"]  # the student environment (every user's server, and the hub itself)
GRADER_VENV = S["grader_venv"]  # the TA environment (the formgrader service)
STATE = Path(S["state_dir"])  # the hub's database, cookie secret, proxy pid (root only)
ETC = Path(S["config_dir"])  # Jupyter config folders: jupyter-student/, jupyter-grader/
COURSE_ROOT = S["course_root"]  # the grader user's course folder (mode 0700)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

# -- where the hub listens ------------------------------------------------------------------
# The proxy is the public face; the hub and the proxy's API listen on loopback only.
c.JupyterHub.bind_url = f"http://{S['ip']}:{S['port']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{S['hub_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{S['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [S["proxy_command"]]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.pid_file = str(STATE / "hub.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
if S.get("ssl_cert"):  # TLS at the proxy (README); or terminate it in nginx/Caddy in front
    c.JupyterHub.ssl_cert = S["ssl_cert"]
    c.JupyterHub.ssl_key = S["ssl_key"]

# -- who may log in ---------------------------------------------------------------------------
INSTRUCTORS = list(S.get("instructors", []))
TAS = list(S.get("tas", []))
STUDENTS = list(S.get("students", []))
GRADERS = sorted(set(INSTRUCTORS + TAS))
if S.get("authenticator", "dummy") == "dummy":
    # Local demo and tests only: one shared password, known to whoever started the hub. A
    # real course swaps this for its identity provider (README): OAuthenticator
    # (``c.JupyterHub.authenticator_class = "generic-oauth"`` and its client settings) or
    # the LTI 1.3 authenticator of the LMS, with the same allowed users and groups.
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = Path(S["dummy_password_file"]).read_text().strip()
else:
    c.JupyterHub.authenticator_class = S["authenticator"]
c.Authenticator.allowed_users = set(GRADERS + STUDENTS)
c.Authenticator.admin_users = set(
    S.get("admins", [])
)  # none by default: nobody reads others' files

# -- groups and roles -------------------------------------------------------------------------
c.JupyterHub.load_groups = {
    FORMGRADE_GROUP: {"users": GRADERS},
    STUDENT_GROUP: {"users": STUDENTS},
}
c.JupyterHub.load_roles = [
    {
        "name": FORMGRADE_GROUP,
        "description": f"instructors and TAs of {COURSE}: open its formgrader",
        "groups": [FORMGRADE_GROUP],
        "scopes": [
            f"access:services!service={COURSE}",
            "list:services",
            f"read:services!service={COURSE}",
        ],
    },
    {
        "name": STUDENT_GROUP,
        "description": f"students of {COURSE}: see that the course exists, nothing more",
        "groups": [STUDENT_GROUP],
        "scopes": ["list:services", f"read:services!service={COURSE}"],
    },
]
if S.get("driver_token_file"):
    # Tests and the benchmark drive the hub through a service token (never the demo's
    # default): it starts and stops servers and issues each user a token of their own, so
    # that every request is then made as that user.
    c.JupyterHub.services = [
        {
            "name": "cvhub-driver",
            "api_token": Path(S["driver_token_file"]).read_text().strip(),
        }
    ]
    c.JupyterHub.load_roles.append(
        {
            "name": "cvhub-driver",
            "services": ["cvhub-driver"],
            "scopes": ["admin:servers", "tokens", "read:users", "list:users"],
        }
    )
else:
    c.JupyterHub.services = []

# The server's own token ($JUPYTERHUB_API_TOKEN) may read its owner's groups: nbgrader's
# JupyterHubAuthPlugin lists a student's courses from the ``nbgrader-<course>`` groups.
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "read:users:name!user",
    "read:users:groups!user",
]

# -- every user's server ------------------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [f"{VENV}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    # nbgrader shells out to `alembic`; the kernel and `jupyter` come from the same venv.
    "PATH": f"{VENV}/bin:{SYSTEM_PATH}",
    # The hub's nbgrader settings (exchange, course id, auth plugin) and, for students,
    # no formgrader or assignment-creation tools in their Lab.
    "JUPYTER_CONFIG_PATH": str(ETC / "jupyter-student"),
}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# Servers idle for long are not culled here (jupyterhub-idle-culler is a separate service;
# README). Stopping the hub stops every server it started.
c.JupyterHub.cleanup_servers = True

# -- the course's formgrader and receipt watcher, services run by the grader user ---------------
GRADER_ENV = {
    "PATH": f"{GRADER_VENV}/bin:{SYSTEM_PATH}",
    # Only the grader service may be framed (the formgrader panel); its nbgrader settings
    # name the same exchange.
    "JUPYTER_CONFIG_PATH": str(ETC / "jupyter-grader"),
    "JUPYTERHUB_DEFAULT_URL": "/lab",
    "SHELL": "/bin/bash",  # the formgrader Lab's terminal, where TAs run cvgrade
}
c.JupyterHub.services.append(
    {
        "name": COURSE,
        "url": f"http://127.0.0.1:{S['service_port']}",
        "command": [f"{GRADER_VENV}/bin/jupyterhub-singleuser"],
        "user": GRADER_USER,
        "cwd": COURSE_ROOT,  # nbgrader_config.py of the course is read from here
        "environment": GRADER_ENV,
        "oauth_no_confirm": True,
    }
)
c.JupyterHub.services.append(
    {
        "name": f"{COURSE}-receipts",
        "command": [
            f"{GRADER_VENV}/bin/cvgrade",
            "--course",
            COURSE_ROOT,
            "receipts",
            "--watch",
            "--interval",
            str(S.get("receipt_interval", 2)),
        ],
        "user": GRADER_USER,
        "cwd": COURSE_ROOT,
        "environment": GRADER_ENV,
    }
)

c.JupyterHub.log_level = S.get("log_level", "INFO")
