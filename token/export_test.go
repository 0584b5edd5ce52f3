package token

// MarshalNamed is the general (encoding/json) writer of claims under
// renamed names, for tests outside the package to compare against.
func MarshalNamed(c *Claims, names ClaimNames) ([]byte, error) { return c.marshal(names) }
