import pytest
from meridian.policy.loader import default_bundle_path

def test_probe(live):
    ops = live.client("operator")
    out = []
    def p(label, r):
        out.append(f"{label}: {r.status_code} {r.text[:150]}")
    import httpx
    class W:
        def __getattr__(self, name):
            f = getattr(ops_, name)
            def call(*a, **k):
                try:
                    return f(*a, **k)
                except Exception as e:
                    class R: status_code = 0; text = repr(e)
                    return R()
            return call
    ops_ = ops
    ops = W()
    p("email nul", ops.post("/v1/accounts", json={"type": "individual", "name": "A", "country": "US", "email": "a\u0000@b"}))
    p("email surrogate", ops.post("/v1/accounts", content=b'{"type": "individual", "name": "A", "country": "US", "email": "a\\ud800@b"}', headers={"content-type": "application/json"}))
    p("name surrogate", ops.post("/v1/accounts", content=b'{"type": "individual", "name": "A\\ud800", "country": "US"}', headers={"content-type": "application/json"}))
    p("orgid nul", ops.post("/v1/accounts", json={"type": "organization", "name": "A", "country": "US", "org_id": "  \u0000"}))
    text = default_bundle_path().read_text()
    p("yaml nul", ops.put("/v1/policy", json={"yaml": text + "\n# \u0000\n"}))
    p("yaml surrogate", ops.put("/v1/policy", content=('{"yaml": ' + __import__('json').dumps(text + "\n# x") [:-1] + '\\ud800"}').encode(), headers={"content-type": "application/json"}))
    p("yaml C1", ops.put("/v1/policy", json={"yaml": text + "\n# \u0085\u2028\n"}))
    p("yaml bom", ops.put("/v1/policy", json={"yaml": "\ufeff" + text}))
    p("token name", ops.post("/v1/tokens", json={"role": "operator", "name": "x\ud7ff\ufffe"}))
    p("idem key nonascii", ops.post("/v1/tokens", json={"role": "operator", "name": "x"}, headers={"idempotency-key": "é".encode("latin-1")}))
    p("records subject", ops.get("/v1/records", params={"subject": "a:b"}))
    p("renew at 8999", ops.post("/v1/renewals", json={"at": "8999-12-31T23:59:59Z"}))
    acct = ops_.post("/v1/accounts", json={"type": "organization", "name": "A", "country": "US"}).json()["account"]["id"]
    p("checkout 8999", ops.post("/v1/checkout", json={"account": acct, "plan": "pro", "channel": "direct", "starts_at": "8999-12-31T23:00:00Z", "term": "year"}))
    p("renew at 8999 again", ops.post("/v1/renewals", json={"at": "8999-12-31T23:59:59Z"}))
    p("transitions", ops.get("/v1/transitions", params={"jurisdiction": "CN", "at": "8999-12-31"}))
    p("big body", ops.post("/v1/accounts", content=b"[" * 100000 + b"]" * 100000, headers={"content-type": "application/json"}))
    p("deep body", ops.post("/v1/decisions", content=b"[" * 100000 + b"]" * 100000, headers={"content-type": "application/json"}))
    print("\n".join(out))
