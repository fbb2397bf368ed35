package clients

import "context"

func newCLIDriver(ctx context.Context, cfg *config) (driver, error) { return nil, ErrUnavailable }
