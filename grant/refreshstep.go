package grant

import "strings"

// scopeTokens splits a requested scope as grantScope reads it, for the
// store's refresh step.
func scopeTokens(scope string) []string {
	var out []string
	for _, sc := range strings.Split(scope, " ") {
		if sc != "" {
			out = append(out, sc)
		}
	}
	return out
}
