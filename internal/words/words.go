// Package words breaks text into lines, for the rule reference and for
// figure legends.
package words

import "strings"

// Wrap breaks s into lines of at most width bytes at spaces; a word longer
// than width stands on a line of its own. Runs of white space fold into
// one space; empty text gives no lines.
func Wrap(s string, width int) []string {
	var lines []string
	var cur string
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
