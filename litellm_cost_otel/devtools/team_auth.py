"""A custom auth for the test proxies (litellm's `general_settings.custom_auth`): the key
`sk-<team>-<anything>` belongs to team <team>. It gives the requests a team, key alias, org
and user the way a database-backed proxy would, without a database. A request header
`x-test-auth-delay: <seconds>` makes the auth take that long (the proxy stamps its receipt
before auth, so the request span must start that much before the first attempt)."""

import asyncio
from typing import Any

from litellm.proxy._types import UserAPIKeyAuth


async def user_api_key_auth(request: Any, api_key: str) -> UserAPIKeyAuth:
    delay = float(request.headers.get("x-test-auth-delay") or 0)
    if delay:
        await asyncio.sleep(delay)
    team = api_key.removeprefix("sk-").split("-")[0]
    return UserAPIKeyAuth(api_key=api_key, key_alias=f"{team}-service-key", team_id=f"{team}-id",
                          team_alias=team, org_id="acme", user_id=f"{team}-owner")
