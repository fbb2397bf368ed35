// Command strom is the Strom broker, replicator and benchmark tool in one binary.
//
// This file only wires cobra commands to packages; no logic lives here.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "strom:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "strom",
		Short:         "Strom: a Kafka-compatible broker and Kafka migration toolkit",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version of strom",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "strom", version)
		},
	})
	root.AddCommand(newServeCmd(), newBenchCmd(), newMirrorCmd(false), newMirrorCmd(true), newVerifyCmd())
	return root
}
