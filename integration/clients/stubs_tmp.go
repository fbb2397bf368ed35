package clients

import "context"

func newCLIDriver(ctx context.Context, cfg *config) (driver, error) { return nil, ErrUnavailable }
func runJava(ctx context.Context, cfg *config, sc *scenario) ([]Result, error) {
	return nil, ErrUnavailable
}
