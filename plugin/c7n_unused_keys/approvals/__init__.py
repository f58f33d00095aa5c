"""The approval app: a click in the Slack digest approves a key's delete, or keeps it.

- `config`: approvals.yml, read and checked (pure).
- `clicks`: what a click asks, who may make it, and what it writes (pure).
- `account`: the account's side: assume its role, read the user, write one tag.
- `app`: the Bolt app that ties them together, and the checks of each request.
- `serve`, `handler`, `deploy`: where it runs (locally, in Lambda, and its deploy).
"""
