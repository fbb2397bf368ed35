package clients

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteMatrix writes results as a markdown table: one row per client and feature, one column per cluster
// (cluster names sorted), each cell the outcome with its detail. results maps a cluster name (e.g. "kafka",
// "strom") to the results of every client run against it. Clients appear in Clients() order, then unknown
// names sorted; features in Features() order, then unknown ones sorted. A client/feature a cluster has no
// result for shows "-".
func WriteMatrix(w io.Writer, results map[string][]Result) error {
	clusters := make([]string, 0, len(results))
	cells := make(map[string]map[[2]string]Result) // cluster -> (client, feature) -> result
	var clientNames, featureNames []string
	for cluster, rs := range results {
		clusters = append(clusters, cluster)
		cells[cluster] = make(map[[2]string]Result)
		for _, r := range rs {
			cells[cluster][[2]string{r.Client, r.Feature}] = r
			if !slices.Contains(clientNames, r.Client) {
				clientNames = append(clientNames, r.Client)
			}
			if !slices.Contains(featureNames, r.Feature) {
				featureNames = append(featureNames, r.Feature)
			}
		}
	}
	slices.Sort(clusters)
	clientNames = orderBy(clientNames, Clients())
	featureNames = orderBy(featureNames, Features())

	var b strings.Builder
	b.WriteString("| client | feature |")
	for _, c := range clusters {
		fmt.Fprintf(&b, " %s |", escapeCell(c))
	}
	b.WriteString("\n|---|---|")
	for range clusters {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, client := range clientNames {
		for _, feature := range featureNames {
			present := false
			for _, c := range clusters {
				_, ok := cells[c][[2]string{client, feature}]
				present = present || ok
			}
			if !present {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s |", escapeCell(client), escapeCell(feature))
			for _, c := range clusters {
				r, ok := cells[c][[2]string{client, feature}]
				if !ok {
					b.WriteString(" - |")
					continue
				}
				fmt.Fprintf(&b, " %s |", escapeCell(cellText(r)))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write matrix: %w", err)
	}
	return nil
}

// maxDetail keeps cells readable; the full detail is in the Result.
const maxDetail = 120

func cellText(r Result) string {
	out := string(r.Outcome)
	if r.Outcome == Fail {
		out = "**FAIL**"
	}
	if r.Detail == "" {
		return out
	}
	d := r.Detail
	if len(d) > maxDetail {
		d = d[:maxDetail] + "…"
	}
	return out + ": " + d
}

// escapeCell keeps a value inside one markdown table cell: pipes escaped, line breaks flattened.
func escapeCell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// orderBy sorts names by their position in known, unknown names last in lexical order.
func orderBy(names, known []string) []string {
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(known, a), slices.Index(known, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}
