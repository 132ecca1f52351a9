"""Releasing the lectures: executed notebooks, offline HTML pages and slides.

release.py         ``cvgrade release-lectures``: execute, export, size each lecture
assets.py          MathJax, reveal.js and the widget manager, vendored from npm
templates/         the nbconvert templates of the pages and the slides
lecture_assets/    the npm project that pins those assets
"""
