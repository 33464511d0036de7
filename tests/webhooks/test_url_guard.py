"""The webhook URL guard: schemes, private addresses, names resolving to them, the allow-list."""

from __future__ import annotations

import pytest

from tracking_service.errors import InvalidInput
from tracking_service.webhooks.config import WebhookConfig
from tracking_service.webhooks.url_guard import allowed_addresses, check_url

DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "internal.example.com": ["10.1.2.3"],
    "mixed.example.com": ["10.1.2.3", "93.184.216.34"],
    "rebind.example.com": ["127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
}


async def fake_resolve(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError(f"{host}: name not known")
    return DNS[host]


async def check(url: str, **config: object) -> list[str]:
    checked = await check_url(url, WebhookConfig(**config), resolver=fake_resolve)  # type: ignore[arg-type]
    return list(checked.addresses)


async def refused(url: str, **config: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        await check(url, **config)
    assert caught.value.field == "url"
    return caught.value.message


async def test_a_public_https_url_passes_with_its_addresses() -> None:
    checked = await check_url(
        "https://hooks.example.com/ops?x=1", WebhookConfig(), resolver=fake_resolve
    )
    assert (checked.host, checked.port, checked.addresses) == (
        "hooks.example.com",
        443,
        ("93.184.216.34",),
    )
    assert await check("https://v6.example.com:8443/") == ["2606:2800:220:1:248:1893:25c8:1946"]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.1/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://169.254.1.1/", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://[fd00::5]/hook", "private"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://100.64.0.1/hook", "non-public"),
        ("https://internal.example.com/hook", "private"),
        ("https://rebind.example.com/hook", "loopback"),
        ("https://metadata.example.com/hook", "metadata"),
        ("https://mapped.example.com/hook", "private"),
    ],
)
async def test_private_addresses_and_names_resolving_to_them_are_refused(
    url: str, kind: str
) -> None:
    message = await refused(url)
    assert kind in message and "TRACKING_WEBHOOK_ALLOW_HOSTS" in message


async def test_a_name_with_one_public_address_keeps_only_that_one() -> None:
    assert await check("https://mixed.example.com/") == ["93.184.216.34"]


async def test_http_needs_allow_http() -> None:
    assert "https" in await refused("http://hooks.example.com/")
    assert await check("http://hooks.example.com/", allow_http=True) == ["93.184.216.34"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "hooks.example.com/x",
        "https:///x",
        "",
        "https://a b.com/",
        "https://user:pw@hooks.example.com/",
        "https://hooks.example.com:99999/",
    ],
)
async def test_malformed_urls_are_refused(url: str) -> None:
    await refused(url)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    assert "does not resolve" in await refused("https://nowhere.example.com/")


async def test_the_allow_list_names_hosts_addresses_and_ranges() -> None:
    assert await check("https://127.0.0.1/", allow_hosts=("127.0.0.1",)) == ["127.0.0.1"]
    assert await check("https://[::1]/", allow_hosts=("::1",)) == ["::1"]
    assert await check("https://internal.example.com/", allow_hosts=("10.0.0.0/8",)) == ["10.1.2.3"]
    assert await check("https://Internal.Example.com./", allow_hosts=("internal.example.com",)) == [
        "10.1.2.3"
    ]
    await refused("https://internal.example.com/", allow_hosts=("192.168.0.0/16", "other"))


async def test_an_allowed_range_does_not_open_the_metadata_address() -> None:
    await refused("https://169.254.169.254/", allow_hosts=("169.254.0.0/16",))
    assert await check("https://169.254.1.1/", allow_hosts=("169.254.0.0/16",)) == ["169.254.1.1"]
    assert await check("https://169.254.169.254/", allow_hosts=("169.254.169.254",)) == [
        "169.254.169.254"
    ]


def test_allowed_addresses_is_what_the_sender_checks_at_connection_time() -> None:
    config = WebhookConfig()
    assert allowed_addresses("h", ["93.184.216.34", "10.0.0.1"], config) == ["93.184.216.34"]
    with pytest.raises(InvalidInput):
        allowed_addresses("h", ["10.0.0.1"], config)


async def test_localhost_really_resolving_is_refused() -> None:
    with pytest.raises(InvalidInput):
        await check_url("https://localhost/", WebhookConfig())
