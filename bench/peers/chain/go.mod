module sluice/bench/peers/chain

go 1.19
