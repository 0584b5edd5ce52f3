// Package verify checks tokend's access tokens inside a resource server,
// so that each service does not hand-roll key fetching, caching, algorithm
// pinning and claim checks, and get some of them wrong.
//
// A Verifier reads the issuer's metadata (RFC 8414) and key set (RFC 7517)
// once, then verifies offline: the algorithm against a list the caller
// pins, the key by kid, the signature, iss, aud, exp, nbf and iat (with a
// leeway), and the typ header (at+jwt, RFC 9068, unless configured
// otherwise for dialect tokens). Errors are values to test with errors.Is:
// ErrExpired, ErrRevoked, ErrAudience, ErrIssuer, ErrSignature, ErrType,
// ErrUnknownKey, ErrAlgorithm, ErrNotYetValid, ErrMalformed.
//
// Keys are refreshed in the background before their Cache-Control max-age
// runs out, so a key tokend announces before it signs is cached before the
// first token it signs arrives. A token naming a key the cache lacks
// causes at most one fetch per Options.KeyRefetchInterval, however many
// such tokens come (forged kids cannot amplify into requests to the
// issuer), and the last good key set keeps serving while the issuer is
// unreachable.
//
// Offline verification alone has a hole: a revoked token keeps working
// until it expires. Unless Options.Offline says to accept that, the
// Verifier follows tokend's revocation feed (GET /oauth2/revocations,
// authenticated as a client): long polls that bring each revoked token,
// session, disabled or deleted user and client within about a second of
// the revocation; Verify refuses the tokens they match with ErrRevoked.
// The set lives in memory and sheds each entry once no token it matches
// can still be live. A reconnection resumes from the last cursor (the
// feed sends the full set again when it cannot resume), and the last set
// keeps serving while the issuer is unreachable.
//
// A token presented again (clients reuse theirs until they expire) is
// answered from a cache of verified tokens: no parsing, no signature
// check, but its times and the revocations are checked on every call.
// Status tells when the issuer was last heard from.
//
// Middleware puts a Verifier in front of an http.Handler, answering as RFC
// 6750 says (WWW-Authenticate: Bearer with invalid_token or
// insufficient_scope) and checking the scopes each route requires.
//
// The package depends on go-jose and the standard library only.
package verify
