package dockertest_test

import (
	"context"
	"testing"

	"github.com/moby/moby/client"
	"github.com/packer-stdio/packer/internal/dockertest"
)

func TestImage(t *testing.T) {
	cli := dockertest.Client(t)
	ref := dockertest.Image(t, cli)
	res, err := cli.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Config.Labels[dockertest.Label]; got == "" {
		t.Errorf("image %s has no %s label", ref, dockertest.Label)
	}
	_ = client.ImageListOptions{}
}
