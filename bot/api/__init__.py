"""The watch API and vendor callbacks (docs/architecture.md#watch-api).

- `credentials`: minting tokens and hook keys, their hashes, constant-time checks (pure);
- `tokens`: which tokens exist (the database's and the config file's), and the Slack use
  cases that make, list and revoke them;
- `watches`: the API's use cases (create, read, stop, a callback), with their errors;
- `hooks`: reading a job id out of a vendor's callback (pure);
- `http`: the WSGI side: routes, bearer auth, body limits, per-token rate, JSON;
- `openapi`: the OpenAPI 3.1 document of all of it.
"""
