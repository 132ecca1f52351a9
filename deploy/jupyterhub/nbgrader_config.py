"""nbgrader's settings for every server of the course hub (students' and the formgrader's).

``hubctl.py`` installs this file as ``<hub>/etc/jupyter-student/nbgrader_config.py`` and
``<hub>/etc/jupyter-grader/nbgrader_config.py`` with the values below filled in, and each
server finds it through ``JUPYTER_CONFIG_PATH`` (``jupyterhub_config.py``): not in
``/etc/jupyter``, which would change every nbgrader on the machine, and not in the venv,
where the student wheel already installs its own ``nbgrader_config.py`` (Validate's
``validate_all``), which still applies.

The course folder's own ``nbgrader_config.py`` (read by the formgrader from its working
directory, and by ``cvgrade``) keeps the grading settings; ``hubctl.py`` adds the same
exchange to it.
"""

c = get_config()  # noqa: F821 (nbgrader's config loader provides get_config)

COURSE = "@COURSE@"
EXCHANGE = "@EXCHANGE@"
# "hub" for the students' servers; "none" for the formgrader, which runs as a hub service
# with no hub user of its own to ask about.
MEMBERSHIP = "@MEMBERSHIP@"

c.CourseDirectory.course_id = COURSE
# The filesystem exchange: a folder every user can write into (mode 1777, as nbgrader needs
# for users on one machine), one sub-folder per course (path_includes_course), so several
# courses share one exchange without seeing each other's assignments.
c.Exchange.root = EXCHANGE
c.Exchange.path_includes_course = True
if MEMBERSHIP == "hub":
    # Course membership comes from the hub's groups (nbgrader-<course>, formgrade-<course>),
    # not from the exchange's folder names: a student fetches and submits only in the
    # courses the hub says they take.
    c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"
