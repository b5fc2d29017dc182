"""feeds: a syndication feed server for current events.

Data flows one way: pages (parse) -> store -> render -> app, driven by refresh/scheduler/cli.
"""

__version__ = "0.1.0"
