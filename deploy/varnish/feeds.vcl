# Varnish as a cache in front of `feeds serve` (one or several replicas): /etc/varnish/default.vcl.
# What it relies on from the origin: strong ETags and Last-Modified per encoding, Cache-Control
# max-age with stale-while-revalidate/stale-if-error (RFC 5861), and replicas that agree byte for
# byte (docs/scaling.md). tests/test_caches.py runs this file against real Varnish.
vcl 4.1;

import directors;
import std;

probe healthz {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

# Replicas ingesting the same source with the same config: any of them may answer any poll.
backend origin1 {
    .host = "127.0.0.1";
    .port = "8000";
    .probe = healthz;
}

sub vcl_init {
    new origins = directors.round_robin();
    origins.add_backend(origin1);
}

sub vcl_recv {
    set req.backend_hint = origins.backend();
    if (req.url ~ "^/(websub|metrics|stats)(\?|$)" || (req.method != "GET" && req.method != "HEAD")) {
        return (pass);
    }
    # The representations the origin stores: Brotli, gzip or none; a client gets the one it reads.
    if (req.http.Accept-Encoding ~ "(?i)\bbr\b") {
        set req.http.Accept-Encoding = "br";
    } elsif (req.http.Accept-Encoding ~ "(?i)\bgzip\b") {
        set req.http.Accept-Encoding = "gzip";
    } else {
        unset req.http.Accept-Encoding;
    }
    # /topics answers HTML to browsers and JSON to everything else.
    if (req.http.Accept ~ "(?i)text/html") {
        set req.http.Accept = "text/html";
    } else {
        set req.http.Accept = "application/json";
    }
    set req.http.X-Feeds-Encoding = req.http.Accept-Encoding;
    unset req.http.Cookie;
    # A healthy origin: stale copies only while they are refreshed in the background
    # (stale-while-revalidate); a failing one: all of stale-if-error.
    if (std.healthy(req.backend_hint)) {
        set req.grace = 60s;
    }
    return (hash);
}

sub vcl_hash {
    hash_data(req.url);
    hash_data(req.http.host);
    hash_data(req.http.X-Feeds-Encoding);
    hash_data(req.http.Accept);
    return (lookup);
}

sub vcl_backend_fetch {
    # Varnish's own gzip handling asks the origin for gzip: ask for what the client reads instead,
    # so the origin's stored representation (and its ETag) is what is cached.
    if (bereq.http.X-Feeds-Encoding) {
        set bereq.http.Accept-Encoding = bereq.http.X-Feeds-Encoding;
    } else {
        unset bereq.http.Accept-Encoding;
    }
    unset bereq.http.X-Feeds-Encoding;
}

sub vcl_backend_response {
    set beresp.do_gzip = false;
    set beresp.do_gunzip = false;
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control, "^.*stale-if-error=([0-9]+).*$", "\1s"), 60s);
    }
    # An expired copy is kept to be revalidated with its ETag: a 304 from the origin refreshes it.
    set beresp.keep = 7d;
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache-Status = "HIT";
    } else {
        set resp.http.X-Cache-Status = "MISS";
    }
}
