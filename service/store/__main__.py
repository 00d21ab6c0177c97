"""Print docs/redis-keys.md: `python -m service.store > docs/redis-keys.md`."""

from service.store.keys import markdown

print(markdown(), end="")
