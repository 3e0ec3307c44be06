module sluice/bench/peers/core

go 1.19
