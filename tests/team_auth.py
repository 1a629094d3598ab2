"""A custom auth for the test proxies (litellm's `general_settings.custom_auth`): the key
`sk-<team>-<anything>` belongs to team <team>. It gives the requests a team, key alias, org
and user the way a database-backed proxy would, without a database."""

from typing import Any

from litellm.proxy._types import UserAPIKeyAuth


async def user_api_key_auth(request: Any, api_key: str) -> UserAPIKeyAuth:
    team = api_key.removeprefix("sk-").split("-")[0]
    return UserAPIKeyAuth(api_key=api_key, key_alias=f"{team}-service-key", team_id=f"{team}-id",
                          team_alias=team, org_id="acme", user_id=f"{team}-owner")
