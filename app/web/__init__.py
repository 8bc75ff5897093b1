"""The web catalog: server-rendered pages (Jinja2) over the same services as the JSON API.

``routes.py`` is thin; ``query.py`` parses the catalog's query string, ``service.py`` and
``facets.py`` hold the queries, ``card.py`` renders model cards safely, ``charts.py`` lays out
the inline SVG charts. Pages need no JavaScript to read and load nothing from other hosts.
"""
