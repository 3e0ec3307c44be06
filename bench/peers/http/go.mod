module sluice/bench/peers/http

go 1.19
