"""nbgrader settings for students, installed with cvcourse into <prefix>/etc/jupyter.

Validate runs every cell of the notebook and lists the ones that fail. Without this, an
untouched assignment would pass: its graded cells hold only a comment once released.
"""

c = get_config()  # noqa: F821 (nbgrader's config loader provides get_config)

c.Validator.validate_all = True
