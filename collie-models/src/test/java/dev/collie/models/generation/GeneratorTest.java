package dev.collie.models.generation;

import dev.collie.core.CollieException;
import dev.collie.core.nn.KvCache;
import dev.collie.core.nn.Tape;
import dev.collie.core.testing.NumericalParity;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@NumericalParity
class GeneratorTest {
    static final Path TINY = Path.of("src/test/resources/fixtures/tiny-llama");
    static DecoderForCausalLM model;

    @BeforeAll
    static void load() {
        model = DecoderCheckpoint.load(TINY, DataType.FLOAT);
    }

    /** Greedy decoding the slow way: the whole sequence through the model for every new token. */
    private static int[] greedyByRecomputing(int[] prompt, int n) {
        List<Integer> seq = new ArrayList<>();
        for (int id : prompt) {
            seq.add(id);
        }
        int[] out = new int[n];
        for (int k = 0; k < n; k++) {
            long[] ids = seq.stream().mapToLong(Integer::longValue).toArray();
            INDArray logits = model.forward(Tape.forInference(1, ids.length), Nd4j.createFromArray(new long[][] {ids}));
            out[k] = Sampler.argmax(logits.getRow(ids.length - 1).toDoubleVector());
            seq.add(out[k]);
        }
        return out;
    }

    @Test
    void greedyWithCacheMatchesRecomputingTheFullSequence() {
        int[] prompt = {1, 29, 56, 26, 60};
        int[] expected = greedyByRecomputing(prompt, 20);
        int[] cached = new Generator(model).generate(prompt, Generator.Options.greedy(20));
        assertArrayEquals(expected, cached);
        int[] uncached = new Generator(model).generate(prompt,
                Generator.Options.builder().maxNewTokens(20).useCache(false).build());
        assertArrayEquals(expected, uncached);
    }

    @Test
    void cachedLogitsEqualFullForwardLogits() {
        long[] ids = {1, 73, 50, 52, 54, 45, 32, 77};
        INDArray full = model.forward(Tape.forInference(1, ids.length), Nd4j.createFromArray(new long[][] {ids}));
        KvCache cache = new KvCache();
        INDArray prefill = model.forward(Tape.forInference(1, 5).setKvCache(cache),
                Nd4j.createFromArray(new long[][] {Arrays.copyOf(ids, 5)}));
        cache.advance(5);
        double worst = prefill.sub(full.get(NDArrayIndex.interval(0, 5),
                NDArrayIndex.all())).amaxNumber().doubleValue();
        for (int i = 5; i < ids.length; i++) {
            INDArray one = model.forward(Tape.forInference(1, 1).setKvCache(cache),
                    Nd4j.createFromArray(new long[][] {{ids[i]}}));
            cache.advance(1);
            worst = Math.max(worst, one.getRow(0).sub(full.getRow(i)).amaxNumber().doubleValue());
        }
        assertTrue(worst < 1e-5, "cached logits differ by " + worst);
    }

    @Test
    void leftPaddedBatchGivesEachPromptsOwnTokens() {
        int[] a = {1, 29, 56, 26, 60, 50};
        int[] b = {1, 53, 19};
        Generator g = new Generator(model);
        List<int[]> batch = g.generate(List.of(a, b), Generator.Options.greedy(12));
        assertArrayEquals(g.generate(a, Generator.Options.greedy(12)), batch.get(0));
        assertArrayEquals(g.generate(b, Generator.Options.greedy(12)), batch.get(1));
    }

    @Test
    void samplingWithAFixedSeedIsDeterministic() {
        int[] prompt = {1, 29, 56};
        Generator.Options o = Generator.Options.builder().maxNewTokens(16).temperature(1.0).topP(0.9).seed(7).build();
        Generator g = new Generator(model);
        int[] first = g.generate(prompt, o);
        assertArrayEquals(first, g.generate(prompt, o));
        assertEquals(16, first.length);
        // another seed, very likely another sequence (random weights give an almost flat distribution)
        int[] other = g.generate(prompt, Generator.Options.builder().maxNewTokens(16).temperature(1.0).topP(0.9)
                .seed(8).build());
        assertFalse(Arrays.equals(first, other));
    }

    @Test
    void stopsAtEos() {
        int[] prompt = {1, 29, 56, 26, 60};
        int[] free = new Generator(model).generate(prompt, Generator.Options.greedy(10));
        int eos = free[3];
        int firstEos = 0;
        while (free[firstEos] != eos) {
            firstEos++;
        }
        int[] stopped = new Generator(model).generate(prompt,
                Generator.Options.builder().maxNewTokens(10).eosIds(eos).build());
        assertArrayEquals(Arrays.copyOf(free, firstEos + 1), stopped);
    }

    @Test
    void topPSamplesOnlyFromTheNucleus() {
        double[] logits = {0.0, 5.0, 4.0, -3.0};
        Generator.Options o = Generator.Options.builder().temperature(1.0).topP(0.5).seed(3).build();
        Sampler narrow = new Sampler(4, o);
        Generator.Row row = new Generator.Row(new int[] {0}, o, 4);
        for (int i = 0; i < 200; i++) {
            assertEquals(1, narrow.pick(logits.clone(), row)); // token 1 alone holds > 50% of the mass
        }
        Generator.Options wide = Generator.Options.builder().temperature(1.0).topP(0.99).seed(3).build();
        Sampler sampler = new Sampler(4, wide);
        boolean sawTwo = false;
        for (int i = 0; i < 200; i++) {
            int id = sampler.pick(logits.clone(), row);
            assertTrue(id == 1 || id == 2 || id == 0, "sampled " + id);
            sawTwo |= id == 2;
        }
        assertTrue(sawTwo);
    }

    @Test
    void topKOfOneIsGreedyAtAnyTemperature() {
        int[] prompt = {1, 29, 56, 26, 60};
        int[] greedy = new Generator(model).generate(prompt, Generator.Options.greedy(10));
        int[] k1 = new Generator(model).generate(prompt, Generator.Options.builder().maxNewTokens(10).temperature(5)
                .topK(1).seed(11).build());
        assertArrayEquals(greedy, k1);
    }

    @Test
    void stopStringEndsARowAndListenerSeesEveryTokenInOrder() {
        int[] prompt = {1, 29, 56, 26, 60};
        int[] free = new Generator(model).generate(prompt, Generator.Options.greedy(10));
        // ids decode to "<id>"; stop at the text of the 4th and 5th tokens together
        Generator g = new Generator(model, ids -> Arrays.stream(ids).mapToObj(id -> "<" + id + ">")
                .reduce("", String::concat));
        String stop = free[3] + "><" + free[4];
        List<Integer> streamed = new ArrayList<>();
        Generator.Result r = g.generate(List.of(prompt), Generator.Options.builder().maxNewTokens(10)
                .stopStrings(List.of(stop)).build(), (row, id) -> streamed.add(id));
        Generator.Completion c = r.completions().get(0);
        int firstStop = 0;
        while (!("<" + free[firstStop] + "><" + free[firstStop + 1] + ">").contains(stop)) {
            firstStop++;
        }
        assertArrayEquals(Arrays.copyOf(free, firstStop + 2), c.tokens());
        assertEquals(Generator.Finish.STOP_STRING, c.finish());
        assertEquals(Arrays.stream(c.tokens()).boxed().toList(), streamed);
        assertEquals("abc", Generator.cutAtStop("abcXYdefXY", List.of("XY", "de")));
        assertThrows(CollieException.class, () -> new Generator(model).generate(List.of(prompt),
                Generator.Options.builder().stopStrings(List.of("x")).build(), (row, id) -> true));
    }

    @Test
    void aListenerCancelsItsRowOnlyAndFinishReasonsAreReported() {
        int[] a = {1, 29, 56, 26, 60, 50};
        int[] b = {1, 53, 19};
        Generator g = new Generator(model);
        Generator.Result r = g.generate(List.of(a, b), Generator.Options.greedy(8), (row, id) -> row != 1);
        assertEquals(Generator.Finish.LENGTH, r.completions().get(0).finish());
        assertArrayEquals(g.generate(a, Generator.Options.greedy(8)), r.completions().get(0).tokens());
        assertEquals(Generator.Finish.CANCELLED, r.completions().get(1).finish());
        assertEquals(1, r.completions().get(1).tokens().length);
        assertEquals(7, r.decodeTokens());   // after the prefill's first token, row 0 alone goes on
        assertTrue(r.prefillNanos() > 0 && r.decodeNanos() > 0 && r.decodeTokensPerSecond() > 0);
    }

    /** Requests with their own settings share a batch, and each row gets what it gets alone. */
    @Test
    void requestsWithTheirOwnSettingsInOneBatchEqualEachAlone() {
        Generator g = new Generator(model);
        List<Generator.Request> requests = List.of(
                new Generator.Request(new int[] {1, 29, 56, 26, 60, 50}, Generator.Options.greedy(9)),
                new Generator.Request(new int[] {1, 53, 19}, Generator.Options.builder().maxNewTokens(5)
                        .temperature(1.2).topK(20).seed(4).build()),
                new Generator.Request(new int[] {1, 7, 44}, Generator.Options.builder().maxNewTokens(7)
                        .temperature(0.9).topP(0.8).repetitionPenalty(1.3).seed(9).build()));
        Generator.Result batch = g.run(requests, (row, id) -> true);
        for (int r = 0; r < requests.size(); r++) {
            Generator.Request q = requests.get(r);
            assertArrayEquals(g.generate(q.prompt(), q.options()), batch.completions().get(r).tokens(), "row " + r);
            assertEquals(Generator.Finish.LENGTH, batch.completions().get(r).finish());
        }
    }

    @Test
    void rejectsTokenIdsOutsideTheVocabulary() {
        CollieException e = assertThrows(CollieException.class,
                () -> new Generator(model).generate(new int[] {1, 96}, Generator.Options.greedy(2)));
        assertTrue(e.getMessage().contains("96"), e.getMessage());
    }
}
