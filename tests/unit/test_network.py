"""bot/support/network.py: the cause of network trouble read from the whole exception chain, as each HTTP
stack wraps it (httpx's own transport, httpx over aiohttp, aiohttp), and which URLs send credentials in
clear."""

from __future__ import annotations

import socket
import ssl

import aiohttp
import httpx
import pytest

from bot.support.network import cause, in_clear, is_network, loopback


def raised(outer: BaseException, *inner: BaseException) -> BaseException:
    """`outer` as it arrives: raised from `inner[0]`, which was raised from `inner[1]`, ..."""
    chain = [outer, *inner]
    for a, b in zip(chain, chain[1:], strict=False):
        a.__cause__ = b
    return outer


def test_a_refused_connection_is_refused_even_where_httpx_aiohttp_calls_it_a_timeout() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    # httpx-aiohttp turns aiohttp's ClientConnectorError into httpx.ConnectTimeout
    assert cause(raised(httpx.ConnectTimeout("Cannot connect to host"), refused)) == "connection refused"
    assert cause(raised(httpx.ConnectError("All connection attempts failed"), OSError("All connection "
                        "attempts failed"), refused)) == "connection refused"


def test_a_name_that_does_not_resolve() -> None:
    gai = socket.gaierror(-2, "Name or service not known")
    assert (cause(raised(httpx.ConnectError("[Errno -2] Name or service not known"), gai))
            == "name not resolved")
    assert cause(raised(httpx.ConnectTimeout("Cannot connect"), gai)) == "name not resolved"


def test_an_aiohttp_connector_error_keeps_the_os_error_apart() -> None:
    class Key:  # what aiohttp's ConnectionKey offers its error's text
        host, port, ssl = "127.0.0.1", 9, True

    err = aiohttp.ClientConnectorError(Key(), ConnectionRefusedError(111, "refused"))  # type: ignore[arg-type]
    assert err.__cause__ is None and cause(err) == "connection refused"


@pytest.mark.parametrize("exc", [httpx.ReadTimeout(""), TimeoutError(), httpx.PoolTimeout("")])
def test_no_answer_in_time_is_timed_out(exc: BaseException) -> None:
    assert cause(exc) == "timed out"


def test_other_causes_and_the_fallback() -> None:
    assert cause(ConnectionResetError(104, "reset")) == "connection closed by the other side"
    assert cause(httpx.RemoteProtocolError("Server disconnected")) == "connection closed by the other side"
    assert cause(OSError(113, "No route to host")) == "host unreachable"
    assert cause(ssl.SSLCertVerificationError(1, "certificate verify failed")).startswith("TLS failed")
    assert cause(httpx.UnsupportedProtocol("ftp")) == "UnsupportedProtocol"


def test_what_counts_as_network_trouble() -> None:
    assert (is_network(httpx.ConnectError("x")) and is_network(aiohttp.ClientError())
            and is_network(TimeoutError()))
    assert not is_network(KeyError("x")) and not is_network(ValueError("x"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://127.8.9.10", "http://localhost:8080",
                                 "http://[::1]:5/", "HTTP://LOCALHOST/"])
def test_loopback_is_exempt(url: str) -> None:
    assert loopback(url) and not in_clear(url)


@pytest.mark.parametrize("url", ["http://fa-xxxx.oraclecloud.com", "http://10.0.0.5:8080/api",
                                 "http://localhost.example.com"])
def test_plain_http_elsewhere_is_in_clear(url: str) -> None:
    assert in_clear(url) and not in_clear(url.replace("http://", "https://"))
