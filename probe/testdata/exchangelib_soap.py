"""Runs exchangelib's SOAP autodiscovery against the simulated estate.

The estate's names live only in its own DNS server, and its HTTPS servers
listen on loopback ports other than 443: the resolver of exchangelib is
pointed at that DNS server, and the sockets requests opens are sent to the
listener serving each address, as the exporter's connect_to does. TLS, the
Host header and the certificate checks keep the real names, and only the
estate's CA is trusted (REQUESTS_CA_BUNDLE).

Prints one JSON object: the EWS URL and primary address found, or the
error.
"""

import json
import socket
import sys

import dns.resolver


def main():
    email, username, password, dns_addr, connect_to_json = sys.argv[1:6]
    connect_to = json.loads(connect_to_json)
    dns_host, dns_port = dns_addr.rsplit(":", 1)

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_host]
    resolver.port = int(dns_port)

    real_getaddrinfo = socket.getaddrinfo

    def lab_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        try:
            socket.inet_aton(host)
            addresses = [host]
        except (OSError, TypeError):
            addresses = [a.address for a in resolver.resolve(host + ".", "A", lifetime=5)]
        out = []
        for address in addresses:
            dest = connect_to.get(f"{address}:{port}")
            if dest is None:
                # Nothing listens there: the refused connection a client
                # would get from a closed port.
                dest = "127.0.0.1:9"
            ip, real_port = dest.rsplit(":", 1)
            out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(real_port))))
        return out

    socket.getaddrinfo = lab_getaddrinfo

    from exchangelib import Credentials
    from exchangelib.autodiscover.discovery import base
    from exchangelib.autodiscover.discovery.soap import SoapAutodiscovery

    # exchangelib builds its own resolver from these.
    base.BaseAutodiscovery.DNS_RESOLVER_KWARGS = {"configure": False}
    base.BaseAutodiscovery.DNS_RESOLVER_ATTRS = dict(
        base.BaseAutodiscovery.DNS_RESOLVER_ATTRS, nameservers=[dns_host], port=int(dns_port)
    )

    try:
        ad, protocol = SoapAutodiscovery(email=email, credentials=Credentials(username, password)).discover()
    except Exception as e:  # the whole point is to report what failed
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return
    print(json.dumps({
        "ews_url": protocol.service_endpoint,
        "smtp_address": ad.autodiscover_smtp_address,
        "version": str(protocol.version.api_version) if protocol.version else "",
    }))


if __name__ == "__main__":
    main()
