import CairnCore
import Testing

@testable import CairnNode

@Suite("HTTP data API")
struct HTTPDataAPITests {
    func words(_ method: String, _ target: String, key: String? = nil, body: String = "") -> [String]? {
        guard
            case .success(let request) = HTTPDataRequest.parse(
                method: method, target: target, idempotencyKey: key, body: Array(body.utf8))
        else { return nil }
        return request.words.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("requests become the commands a client would send; Idempotency-Key wraps writes")
    func commands() {
        #expect(words("GET", "/v1/kv/a%20b%2Fc") == ["GET", "a b/c"])
        #expect(words("PUT", "/v1/kv/k?ttl=30", body: "v") == ["SET", "k", "v", "EX", "30"])
        #expect(words("DELETE", "/v1/kv/k", key: "t-1") == ["IDEMPOTENT", "t-1", "DEL", "k"])
        #expect(words("POST", "/v1/kv/k?incrby=-7", key: "t-2") == ["IDEMPOTENT", "t-2", "INCRBY", "k", "-7"])
        for (method, target, key) in [
            ("GET", "/v1/kv/", nil), ("GET", "/v1/kv/%4", nil), ("PUT", "/v1/kv/k?ttl=-1", nil),
            ("PUT", "/v1/kv/k?nx=1", nil), ("POST", "/v1/kv/k", nil), ("GET", "/v1/kv/k", "t"),
            ("PUT", "/v1/kv/k", ""), ("OPTIONS", "/v1/kv/k", nil),
        ] {
            #expect(words(method, target, key: key) == nil, "\(method) \(target) accepted")
        }
    }

    @Test("replies map to statuses: retryable errors are 503 with Retry-After, type errors 409")
    func responses() throws {
        let get = try HTTPDataRequest.parse(method: "GET", target: "/v1/kv/k", idempotencyKey: nil, body: []).get()
        #expect(get.response(to: Array("$2\r\nhi\r\n".utf8)).body == Array("hi".utf8))
        #expect(get.response(to: Array("$-1\r\n".utf8)).status == 404)
        let busy = get.response(to: Array("-TRYAGAIN node overloaded\r\n".utf8))
        #expect(busy.status == 503 && busy.retryAfterSeconds == 1)
        #expect(busy.body == Array("{\"error\":\"TRYAGAIN node overloaded\"}\n".utf8))
        #expect(get.response(to: Array("-WRONGTYPE Operation against a key\r\n".utf8)).status == 409)
        #expect(get.response(to: Array("-ERR syntax error\r\n".utf8)).status == 400)
        #expect(get.response(to: Array(":1\r\n".utf8)).status == 500)
        let incr = try HTTPDataRequest.parse(
            method: "POST", target: "/v1/kv/k?incrby=2", idempotencyKey: nil, body: []
        ).get()
        #expect(incr.response(to: Array(":12\r\n".utf8)).body == Array("{\"value\":12}\n".utf8))
    }
}
