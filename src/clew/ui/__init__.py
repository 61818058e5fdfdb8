"""``clew ui``: the local trace viewer (``pip install 'clew[gateway]'``: FastAPI and uvicorn).

:mod:`clew.ui.api` is its server; ``static/`` its page (plain ES modules, no build step).
"""
