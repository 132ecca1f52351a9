"""Jupyter Server settings of the formgrader service only (``grader-<course>``'s server).

JupyterHub >= 4.1 sends ``Content-Security-Policy: frame-ancestors 'none'`` from every
single-user server unless the server sets its own, and nbgrader's formgrader panel is an
iframe of the same server: the panel stays blank (nbgrader #1870). This server, and no
student's, allows being framed by its own origin. With ``JupyterHub.subdomain_host`` (a
wildcard DNS name and certificate; README) that origin is the service's alone; on one
origin, pages of other servers of the hub share it, which the hub's roles keep from
students: they cannot open this service.
"""

c = get_config()  # noqa: F821 (Jupyter's config loader provides get_config)

c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}

# TAs run ``cvgrade`` in this server's terminal. A login shell would read /etc/profile,
# which resets PATH and loses the TA environment's bin: start an interactive shell instead.
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-i"]}
