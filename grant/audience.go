package grant

// RefreshAudience is the aud of every refresh JWT (a dialect's refresh
// token that is a signed JWT, such as simplejwt's): the issuer URL with
// "/refresh" appended. Refresh JWTs are signed with the access tokens' key,
// by the same issuer and with the same typ, so this is what tells them
// apart: a resource server that checks aud as the README says (the issuer,
// or --audience) refuses a refresh token presented as an access token, and
// the engine accepts a refresh JWT only with this audience. The access
// audience must therefore never equal it (cmd/tokend refuses that).
func RefreshAudience(issuer string) string { return issuer + "/refresh" }
